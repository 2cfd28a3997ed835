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
    /** Width of a bar's line when the output is not a terminal (a log file) and COLUMNS is not set. */
    static final int DEFAULT_WIDTH = 100;
    private static volatile int width;

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
                .setConsumer(new ConsoleProgressBarConsumer(out, width()))
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

    /**
     * The bars' line width, found once per process. Left to itself the progress bar library asks the
     * terminal for its width whenever a bar draws after another was closed, and on Linux asking means
     * starting {@code tty} and {@code test} processes: about eleven process starts per trained
     * concept, a fifth of a demo concept's time, even with stderr redirected to a file.
     */
    static int width() {
        int w = width;
        if (w == 0) {
            w = parseColumns(System.getenv("COLUMNS"));
            if (w == 0) {
                var console = System.console();
                w = console != null && console.isTerminal() ? terminalWidth() : DEFAULT_WIDTH;
            }
            width = w;
        }
        return w;
    }

    /** COLUMNS as a width, or 0 when it is unset or not a positive number. */
    static int parseColumns(String columns) {
        if (columns == null || !columns.strip().matches("[0-9]{1,5}")) {
            return 0;
        }
        int w = Integer.parseInt(columns.strip());
        return w >= 20 ? w : 0;
    }

    private static int terminalWidth() {
        try (var terminal = org.jline.terminal.TerminalBuilder.builder().dumb(true).build()) {
            int w = terminal.getWidth();
            return w >= 20 ? w : DEFAULT_WIDTH;
        } catch (java.io.IOException | RuntimeException e) {
            return DEFAULT_WIDTH;
        }
    }
}
