package dev.cdas.cli;

import dev.cdas.train.ProgressListener;
import java.io.PrintStream;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/** Draws a library call's progress as an ASCII bar on a console stream (the command line's stderr). */
public final class ConsoleProgress implements ProgressListener {
    private final PrintStream out;
    private final Map<String, ProgressBar> bars = new HashMap<>();

    public ConsoleProgress(PrintStream out) {
        this.out = out;
    }

    @Override
    public synchronized void progress(String task, long done, long total, String detail) {
        ProgressBar bar = bars.computeIfAbsent(task, t -> new ProgressBarBuilder()
                .setTaskName(t).setInitialMax(total).setStyle(ProgressBarStyle.ASCII)
                .setUnit(t.equals("diffmean") ? " seq" : "", 1)
                .setConsumer(new ConsoleProgressBarConsumer(out))
                .setUpdateIntervalMillis(500).startsFrom(done, Duration.ZERO).build());
        bar.stepTo(done);
        if (detail != null && !detail.isEmpty()) {
            bar.setExtraMessage(detail);
        }
    }

    @Override
    public synchronized void finished(String task) {
        ProgressBar bar = bars.remove(task);
        if (bar != null) {
            bar.close();
        }
    }
}
