package dev.cdas.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class ConsoleProgressTest {
    @Test
    void drawsTheTaskItsProgressAndTheDetail() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ConsoleProgress bar = bar(out);
        for (int step = 1; step <= 40; step++) {
            bar.progress("train", step, 40, "loss 0.1234  512 tok/s");
        }
        bar.finished("train");
        String text = out.toString(StandardCharsets.UTF_8);
        assertTrue(text.contains("train"), text);
        assertTrue(text.contains("40/40"), text);
        assertTrue(text.contains("loss 0.1234  512 tok/s"), text);
    }

    @Test
    void columnsGivesTheWidthWhenItIsAPlausibleNumber() {
        assertEquals(132, ConsoleProgress.parseColumns("132"));
        assertEquals(80, ConsoleProgress.parseColumns(" 80\n"));
        assertEquals(0, ConsoleProgress.parseColumns(null));
        assertEquals(0, ConsoleProgress.parseColumns(""));
        assertEquals(0, ConsoleProgress.parseColumns("wide"));
        assertEquals(0, ConsoleProgress.parseColumns("-5"));
        assertEquals(0, ConsoleProgress.parseColumns("3"));
        assertEquals(0, ConsoleProgress.parseColumns("99999999999"));
    }

    @Test
    void barsOneAfterAnotherKeepOneWidthWithinIt() {
        // Bars closed and opened again (one per concept in a fan-out run) draw with the width found
        // once for the process: never a line longer than it.
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ConsoleProgress bar = bar(out);
        for (int concept = 0; concept < 5; concept++) {
            for (int step = 1; step <= 10; step++) {
                bar.progress("concept " + concept, step, 10, "loss 0." + step);
            }
            bar.finished("concept " + concept);
        }
        int width = ConsoleProgress.width();
        assertEquals(width, ConsoleProgress.width());
        assertTrue(width >= 20, "width " + width);
        for (String line : out.toString(StandardCharsets.UTF_8).split("[\r\n]")) {
            assertTrue(line.length() <= width, line.length() + " > " + width + ": " + line);
        }
    }

    private static ConsoleProgress bar(ByteArrayOutputStream out) {
        return new ConsoleProgress(new PrintStream(out, true, StandardCharsets.UTF_8), ConsoleProgress.Mode.BAR, 30, System::nanoTime);
    }

    private static final long SECOND = 1_000_000_000L;

    @Test
    void inALogFileALineEveryIntervalAndOneAtTheEndInsteadOfABar() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        AtomicLong now = new AtomicLong(1000 * SECOND); // the clock's origin is arbitrary
        ConsoleProgress lines = new ConsoleProgress(new PrintStream(out, true, StandardCharsets.UTF_8),
                ConsoleProgress.Mode.LINES, 30, now::get);
        for (int step = 0; step <= 100; step++) {
            if (step > 0) {
                now.addAndGet(SECOND); // a step a second: lines at 30 s, 60 s and 90 s, and the end's
            }
            lines.progress("train", step, 100, step < 95 ? "loss 0.5" : ""); // an empty detail keeps the last
        }
        lines.finished("train");
        lines.finished("train"); // a second end says nothing more
        assertEquals(List.of(
                "train 30/100 (30%) loss 0.5, 0:00:30 elapsed, ~0:01:10 left",
                "train 60/100 (60%) loss 0.5, 0:01:00 elapsed, ~0:00:40 left",
                "train 90/100 (90%) loss 0.5, 0:01:30 elapsed, ~0:00:10 left",
                "train 100/100 (100%) loss 0.5, 0:01:40 elapsed"),
                out.toString(StandardCharsets.UTF_8).lines().toList());
        assertTrue(!out.toString(StandardCharsets.UTF_8).contains("\r"), "no carriage returns in a log file");
    }

    @Test
    void tasksKeepTheirOwnClocksAndAShortTaskGivesOnlyItsEnd() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        AtomicLong now = new AtomicLong(0);
        ConsoleProgress lines = new ConsoleProgress(new PrintStream(out, true, StandardCharsets.UTF_8),
                ConsoleProgress.Mode.LINES, 30, now::get);
        for (int concept = 1; concept <= 3; concept++) {
            for (int step = 1; step <= 4; step++) {
                now.addAndGet(5 * SECOND);
                lines.progress("train", step, 4, "loss 0." + step);
            }
            lines.finished("train");
            lines.progress("concepts", concept, 3, "c" + concept + ": ok");
        }
        lines.finished("concepts");
        // each train starts its clock at its first step (5 s after the previous end); the concepts'
        // line at 60 s (40 s after its first call) already says 3/3, so its end adds none
        assertEquals(List.of(
                "train 4/4 (100%) loss 0.4, 0:00:15 elapsed",
                "train 4/4 (100%) loss 0.4, 0:00:15 elapsed",
                "train 4/4 (100%) loss 0.4, 0:00:15 elapsed",
                "concepts 3/3 (100%) c3: ok, 0:00:40 elapsed"),
                out.toString(StandardCharsets.UTF_8).lines().toList());
    }

    @Test
    void offSaysNothing() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ConsoleProgress off = new ConsoleProgress(new PrintStream(out, true, StandardCharsets.UTF_8),
                ConsoleProgress.Mode.OFF, 0, System::nanoTime);
        off.progress("train", 1, 2, "loss 1");
        off.finished("train");
        assertEquals("", out.toString(StandardCharsets.UTF_8));
    }

    @Test
    void theEnvironmentChoosesTheModeAndTheIntervalAndABadValueIsReported() {
        ByteArrayOutputStream warnings = new ByteArrayOutputStream();
        PrintStream w = new PrintStream(warnings, true, StandardCharsets.UTF_8);
        assertEquals(ConsoleProgress.Mode.BAR, ConsoleProgress.mode(null, true, w));
        assertEquals(ConsoleProgress.Mode.LINES, ConsoleProgress.mode(null, false, w));
        assertEquals(ConsoleProgress.Mode.LINES, ConsoleProgress.mode(" Auto ", false, w));
        assertEquals(ConsoleProgress.Mode.BAR, ConsoleProgress.mode("bar", false, w));
        assertEquals(ConsoleProgress.Mode.LINES, ConsoleProgress.mode("LINES", true, w));
        assertEquals(ConsoleProgress.Mode.OFF, ConsoleProgress.mode("off", true, w));
        assertEquals(30, ConsoleProgress.seconds(null, w));
        assertEquals(5, ConsoleProgress.seconds(" 5", w));
        assertEquals(0, ConsoleProgress.seconds("0", w));
        assertEquals("", warnings.toString(StandardCharsets.UTF_8));
        assertEquals(ConsoleProgress.Mode.BAR, ConsoleProgress.mode("quiet", true, w));
        assertEquals(30, ConsoleProgress.seconds("-1", w));
        assertEquals(List.of("[WARN] CDAS_PROGRESS=quiet is not auto, bar, lines or off; taking auto",
                "[WARN] CDAS_PROGRESS_SECONDS=-1 is not a whole number of seconds; taking 30"),
                warnings.toString(StandardCharsets.UTF_8).lines().toList());
    }

    @Test
    void clockTimeIsHoursMinutesSeconds() {
        assertEquals("0:00:00", ConsoleProgress.clockTime(-5));
        assertEquals("0:00:59", ConsoleProgress.clockTime(59 * SECOND + SECOND / 2));
        assertEquals("1:01:01", ConsoleProgress.clockTime(3661 * SECOND));
        assertEquals("27:46:40", ConsoleProgress.clockTime(100_000 * SECOND));
    }

    @Test
    void stderrHereIsNotATerminal() {
        // surefire pipes the test JVM's stderr: isatty(2) answers, and answers no (auto: lines)
        assertEquals(Boolean.FALSE, ConsoleProgress.stderrIsTerminal());
        assertEquals(false, ConsoleProgress.isTerminal());
    }
}
