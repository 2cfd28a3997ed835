package dev.cdas.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class ConsoleProgressTest {
    @Test
    void drawsTheTaskItsProgressAndTheDetail() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ConsoleProgress bar = new ConsoleProgress(new PrintStream(out, true, StandardCharsets.UTF_8));
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
        ConsoleProgress bar = new ConsoleProgress(new PrintStream(out, true, StandardCharsets.UTF_8));
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
}
