package dev.cdas.cli;

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
}
