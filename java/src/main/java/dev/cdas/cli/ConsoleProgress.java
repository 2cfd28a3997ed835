package dev.cdas.cli;

import dev.cdas.train.ProgressListener;
import java.io.PrintStream;
import java.time.Duration;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.function.LongSupplier;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/**
 * Shows a library call's progress on a console stream (the command line's stderr). On a terminal:
 * an ASCII bar redrawn in place. Otherwise (a log file under Slurm, Kubernetes or nohup): plain
 * lines, one per task every {@value #DEFAULT_SECONDS} seconds and one when it ends, instead of a
 * bar's carriage returns piling up in the file. {@value #MODE_ENV} ({@code auto}, {@code bar},
 * {@code lines} or {@code off}) chooses, {@value #SECONDS_ENV} sets the lines' interval.
 */
public final class ConsoleProgress implements ProgressListener {
    /** Width of a bar's line when the output is not a terminal (a log file) and COLUMNS is not set. */
    static final int DEFAULT_WIDTH = 100;
    /** The environment variable that chooses how progress is shown. */
    static final String MODE_ENV = "CDAS_PROGRESS";
    /** The environment variable with the seconds between two lines of a task in line mode. */
    static final String SECONDS_ENV = "CDAS_PROGRESS_SECONDS";
    /** Seconds between two lines of a task in line mode, unless {@value #SECONDS_ENV} says otherwise. */
    static final int DEFAULT_SECONDS = 30;
    private static volatile int width;

    /** How progress is shown. */
    enum Mode {
        /** A bar redrawn in place (a terminal). */
        BAR,
        /** A line per task every so often and one at its end (a log file). */
        LINES,
        /** Nothing. */
        OFF
    }

    private final PrintStream out;
    private final Mode mode;
    private final long intervalNanos;
    private final LongSupplier clock;
    private final Map<String, ProgressBar> bars = new HashMap<>();
    private final Map<String, Line> lines = new HashMap<>();

    /** A task's state in line mode (times from the clock, in nanoseconds). */
    private static final class Line {
        final long start;
        long last;
        long done;
        long total;
        String detail = "";
        long shownDone = -1;
        String shownDetail;

        Line(long now) {
            start = now;
            last = now;
        }
    }

    /**
     * Progress on {@code out}, shown as {@value #MODE_ENV} and {@value #SECONDS_ENV} say (by
     * default a bar on a terminal, lines otherwise).
     *
     * @param out the stream to write to (stderr)
     */
    public ConsoleProgress(PrintStream out) {
        this(out, mode(System.getenv(MODE_ENV), isTerminal(), out), seconds(System.getenv(SECONDS_ENV), out), System::nanoTime);
    }

    ConsoleProgress(PrintStream out, Mode mode, int seconds, LongSupplier clock) {
        this.out = out;
        this.mode = mode;
        this.intervalNanos = seconds * 1_000_000_000L;
        this.clock = clock;
    }

    @Override
    public synchronized void progress(String task, long done, long total, String detail) {
        switch (mode) {
            case OFF -> { }
            case LINES -> {
                long now = clock.getAsLong();
                Line line = lines.computeIfAbsent(task, t -> new Line(now));
                line.done = done;
                line.total = total;
                if (detail != null && !detail.isEmpty()) {
                    line.detail = detail;
                }
                if (now - line.last >= intervalNanos) {
                    line.last = now;
                    show(task, line, now);
                }
            }
            case BAR -> {
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
        }
    }

    @Override
    public synchronized void interrupted(String task, long done, long total, String what) {
        if (!bars.isEmpty()) {
            out.println(); // off the bar's line
        }
        out.println("interrupted: " + task + " at step " + done + " of " + total + "; " + what
                + "; the same command with --resume continues from it");
    }

    /** {@return whether this draws bars redrawn in place (a terminal), which other output on it would break} */
    public boolean drawsBars() {
        return mode == Mode.BAR;
    }

    @Override
    public synchronized void finished(String task) {
        ProgressBar bar = bars.remove(task);
        if (bar != null) {
            bar.close();
        }
        Line line = lines.remove(task);
        if (line != null && (line.shownDone != line.done || !line.detail.equals(line.shownDetail))) {
            show(task, line, clock.getAsLong()); // the end, unless the last line already said it
        }
    }

    private void show(String task, Line line, long now) {
        line.shownDone = line.done;
        line.shownDetail = line.detail;
        out.println(render(task, line, now));
    }

    /** One line of a task: "train 12/40 (30%) loss 0.1234  512 tok/s, 0:00:31 elapsed, ~0:01:12 left". */
    private static String render(String task, Line line, long now) {
        long elapsed = now - line.start;
        StringBuilder b = new StringBuilder(task).append(' ').append(line.done).append('/').append(line.total);
        if (line.total > 0) {
            b.append(" (").append(Math.min(100, 100 * line.done / line.total)).append("%)");
        }
        if (!line.detail.isEmpty()) {
            b.append(' ').append(line.detail);
        }
        b.append(", ").append(clockTime(elapsed)).append(" elapsed");
        if (line.done > 0 && line.done < line.total) {
            double left = (double) elapsed * (line.total - line.done) / line.done;
            b.append(", ~").append(clockTime((long) left)).append(" left");
        }
        return b.toString();
    }

    /** Nanoseconds as H:MM:SS. */
    static String clockTime(long nanos) {
        long s = Math.max(0, nanos / 1_000_000_000L);
        return String.format(Locale.ROOT, "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60);
    }

    /**
     * The mode {@value #MODE_ENV} asks for; {@code auto} (or unset): a bar on a terminal, lines
     * otherwise. Another value is reported on {@code warnings} and taken as {@code auto}.
     */
    static Mode mode(String setting, boolean terminal, PrintStream warnings) {
        String s = setting == null ? "" : setting.strip().toLowerCase(Locale.ROOT);
        return switch (s) {
            case "bar" -> Mode.BAR;
            case "lines" -> Mode.LINES;
            case "off" -> Mode.OFF;
            case "", "auto" -> terminal ? Mode.BAR : Mode.LINES;
            default -> {
                warnings.println("[WARN] " + MODE_ENV + "=" + setting + " is not auto, bar, lines or off; taking auto");
                yield terminal ? Mode.BAR : Mode.LINES;
            }
        };
    }

    /** The seconds {@value #SECONDS_ENV} asks for, or {@value #DEFAULT_SECONDS} (a bad value is reported). */
    static int seconds(String setting, PrintStream warnings) {
        if (setting == null || setting.isBlank()) {
            return DEFAULT_SECONDS;
        }
        if (setting.strip().matches("[0-9]{1,6}")) {
            return Integer.parseInt(setting.strip());
        }
        warnings.println("[WARN] " + SECONDS_ENV + "=" + setting + " is not a whole number of seconds; taking "
                + DEFAULT_SECONDS);
        return DEFAULT_SECONDS;
    }

    /**
     * Whether stderr (where progress goes) is a terminal: the C library's {@code isatty(2)}, so that
     * {@code 2> file} gets lines even when stdout is a terminal; where that cannot be asked, whether
     * the JVM's console is one.
     */
    static boolean isTerminal() {
        Boolean stderr = stderrIsTerminal();
        if (stderr != null) {
            return stderr;
        }
        var console = System.console();
        return console != null && console.isTerminal();
    }

    /** {@code isatty(2)} through the C library, or null when it cannot be called. */
    static Boolean stderrIsTerminal() {
        try {
            java.lang.foreign.Linker linker = java.lang.foreign.Linker.nativeLinker();
            var isatty = linker.defaultLookup().find("isatty");
            if (isatty.isEmpty()) {
                return null;
            }
            var handle = linker.downcallHandle(isatty.get(), java.lang.foreign.FunctionDescriptor.of(
                    java.lang.foreign.ValueLayout.JAVA_INT, java.lang.foreign.ValueLayout.JAVA_INT));
            return (int) handle.invokeExact(2) == 1;
        } catch (Throwable e) {
            return null; // no native access, or no C library to ask
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
                w = isTerminal() ? terminalWidth() : DEFAULT_WIDTH;
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
