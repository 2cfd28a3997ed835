package dev.cdas.fuzz;

import dev.cdas.CdasException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * What every fuzz target of an input parser checks: the parser either returns, or throws one of the
 * project's documented exceptions (an {@link IOException} such as DataFormatException,
 * SafetensorsFormatException, ModelFormatException and its subclasses, or a {@link CdasException}
 * such as InvalidArgumentException) whose first line names the file and the problem (the only
 * errors of more than one line are the checkpoint validator's, which list every mismatched tensor
 * below a first line that stands alone). Anything else (NullPointerException,
 * IndexOutOfBoundsException, NumberFormatException, OutOfMemoryError, StackOverflowError, ...)
 * escapes the target and is a finding; so is a message that is empty, starts with a blank line or
 * does not say which file is wrong.
 */
public final class FuzzSupport {
    private FuzzSupport() {}

    /** A parse of outside input. */
    @FunctionalInterface
    public interface Parse {
        void run() throws IOException;
    }

    /** A fresh temporary folder for one fuzz test class (deleted with {@link #deleteTree}). */
    public static Path tempDir(String prefix) {
        try {
            return Files.createTempDirectory("cdas-fuzz-" + prefix);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Writes {@code bytes} to {@code file} (replacing it). */
    public static Path write(Path file, byte[] bytes) {
        try {
            return Files.write(file, bytes);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Runs {@code parse}; returns normally when it succeeds or fails the documented way, with a
     * one-line message containing {@code mustName} (the file's name, or its folder's).
     */
    public static void expectParsedOrRefused(String mustName, Parse parse) {
        try {
            parse.run();
        } catch (IOException | CdasException e) {
            checkMessage(e, mustName);
        }
    }

    private static void checkMessage(Exception e, String mustName) {
        String m = e.getMessage();
        if (m == null || m.isBlank()) {
            throw new AssertionError("error without a message: " + e, e);
        }
        String first = m.lines().findFirst().orElse("");
        if (first.isBlank() || m.indexOf('\r') >= 0) {
            throw new AssertionError("error message's first line is blank, or it holds a carriage return: " + m, e);
        }
        boolean validatorList = m.lines().skip(1).findFirst().orElse("").matches("\\(\\d+ more problems?\\)");
        if (m.indexOf('\n') >= 0 && !validatorList) {
            throw new AssertionError("error message spans lines: " + m, e);
        }
        if (mustName != null && !first.contains(mustName)) {
            throw new AssertionError("error message does not name " + mustName + ": " + m, e);
        }
    }

    /** Deletes a folder and what is in it, quietly. */
    public static void deleteTree(Path dir) {
        if (dir == null || !Files.exists(dir)) {
            return;
        }
        try (Stream<Path> s = Files.walk(dir)) {
            s.sorted(Comparator.reverseOrder()).forEach(p -> {
                try {
                    Files.deleteIfExists(p);
                } catch (IOException ignored) {
                    // a temporary folder; the OS cleans it eventually
                }
            });
        } catch (IOException ignored) {
            // as above
        }
    }

    /** The project root (for fixtures under demo/). */
    public static Path projectDir() {
        String dir = System.getProperty("cdas.project.dir");
        return dir != null ? Path.of(dir) : Path.of("..").toAbsolutePath().normalize();
    }
}
