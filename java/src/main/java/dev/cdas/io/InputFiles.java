package dev.cdas.io;

import com.fasterxml.jackson.core.JsonProcessingException;
import dev.cdas.InvalidArgumentException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;

/**
 * The one way the library reads and replaces files given to it: only regular files are read (a
 * FIFO would block forever, {@code /dev/zero} never ends, a folder cannot be read), their size is
 * bounded before anything is allocated, text is strict UTF-8, and an output path is replaced only
 * when it is a regular file or does not exist yet (never a device node, FIFO or folder). Every
 * message starts with the file. The bounds are listed in {@code docs/limits.md}.
 */
public final class InputFiles {
    /**
     * The largest JSON or text file read whole (config.json, tokenizer.json, a chat template, a prompts
     * file): 1 GiB by default, system property {@code cdas.maxTextFileBytes}.
     */
    public static final long MAX_TEXT_FILE_BYTES = Long.getLong("cdas.maxTextFileBytes", 1L << 30);

    private InputFiles() {}

    /**
     * The JSON parser's description of what is wrong with a file, for one line of an error message:
     * Jackson's message without its location, whose quotes of the file (a field name, a token) are
     * the file's characters, line breaks included. Here control characters and the Unicode line and
     * paragraph separators are written as escapes: {@code \n}, {@code \r}, {@code \t}, or a backslash,
     * {@code u} and four hexadecimal digits.
     *
     * @param e the parser's exception
     * @return its message on one line
     */
    public static String jsonError(JsonProcessingException e) {
        String m = e.getOriginalMessage();
        return m == null ? "unreadable JSON" : oneLine(m);
    }

    /**
     * Text from a file made fit for one line of an error message, as {@link #jsonError} does:
     * control characters and the Unicode line and paragraph separators written as escapes.
     *
     * @param m the text
     * @return {@code m} on one line
     */
    public static String oneLine(String m) {
        StringBuilder sb = new StringBuilder(m.length());
        for (int i = 0; i < m.length(); i++) {
            char c = m.charAt(i);
            switch (c) {
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (Character.isISOControl(c) || c == 0x2028 || c == 0x2029) {
                        sb.append(String.format(java.util.Locale.ROOT, "\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        return sb.toString();
    }

    /**
     * Null when {@code file} is a regular file (links followed), otherwise what it is ("a folder",
     * "a FIFO", "a device or other special file").
     *
     * @throws NoSuchFileException when nothing is there
     * @param file the path to look at
     * @return null for a regular file, else a description of what is there
     * @throws IOException when its attributes cannot be read
     */
    public static String notRegular(Path file) throws IOException {
        BasicFileAttributes a = Files.readAttributes(file, BasicFileAttributes.class);
        if (a.isRegularFile()) {
            return null;
        }
        if (a.isDirectory()) {
            return "a folder";
        }
        String kind = "a device or other special file";
        try {
            Object mode = Files.getAttribute(file, "unix:mode");
            if (mode instanceof Integer m) {
                kind = switch (m & 0170000) {
                    case 0010000 -> "a FIFO (named pipe)";
                    case 0020000 -> "a character device";
                    case 0060000 -> "a block device";
                    case 0140000 -> "a socket";
                    default -> kind;
                };
            }
        } catch (UnsupportedOperationException | IllegalArgumentException | IOException ignored) {
            // Deliberate: Files.getAttribute throws the JDK's IllegalArgumentException (or
            // UnsupportedOperationException) when the file system has no "unix" view; then the
            // generic description.
        }
        return kind;
    }

    /**
     * Throws {@link InvalidArgumentException} naming {@code file} unless it is a regular file (links followed).
     *
     * @param file the path to check
     * @throws java.nio.file.NoSuchFileException when nothing is there
     * @throws IOException                      when its attributes cannot be read
     */
    public static void requireRegularFile(Path file) throws IOException {
        String kind = notRegular(file);
        if (kind != null) {
            throw new InvalidArgumentException(file + ": is " + kind + ", not a regular file (only regular files are read)");
        }
    }

    /**
     * A whole regular file as strict UTF-8 text, at most {@code maxBytes} long.
     *
     * @throws NoSuchFileException when it does not exist
     * @throws InvalidArgumentException naming the file when it is not a regular file, is too large or is not UTF-8
     * @param file     the file to read
     * @param maxBytes the largest size accepted, in bytes
     * @return the text
     * @throws IOException when the file cannot be read
     */
    public static String readString(Path file, long maxBytes) throws IOException {
        byte[] bytes = readBytes(file, maxBytes);
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw new InvalidArgumentException(file + ": is not valid UTF-8 text", e);
        }
    }

    /**
     * {@link #readString(Path, long)} with {@link #MAX_TEXT_FILE_BYTES}.
     *
     * @param file the file to read
     * @return the text
     * @throws InvalidArgumentException naming the file when it is not a regular file, is too large or is not UTF-8
     * @throws IOException              when it does not exist or cannot be read
     */
    public static String readString(Path file) throws IOException {
        return readString(file, MAX_TEXT_FILE_BYTES);
    }

    /**
     * A whole regular file, at most {@code maxBytes} long (checked before reading; a file that grows is cut off there).
     *
     * @param file     the file to read
     * @param maxBytes the largest size accepted, in bytes
     * @return the file's bytes
     * @throws InvalidArgumentException naming the file when it is not a regular file or is larger than {@code maxBytes}
     * @throws IOException              when it does not exist or cannot be read
     */
    public static byte[] readBytes(Path file, long maxBytes) throws IOException {
        requireRegularFile(file);
        long size = Files.size(file);
        if (size > maxBytes || maxBytes > Integer.MAX_VALUE - 8 && size > Integer.MAX_VALUE - 8) {
            throw new InvalidArgumentException(file + ": is " + size + " bytes, more than the limit of " + maxBytes
                    + " (see docs/limits.md)");
        }
        try (InputStream in = Files.newInputStream(file)) {
            byte[] b = in.readNBytes((int) Math.min(maxBytes, Integer.MAX_VALUE - 8) + 1);
            if (b.length > maxBytes) {
                throw new InvalidArgumentException(file + ": grew past the limit of " + maxBytes + " bytes while being read");
            }
            return b;
        }
    }

    /**
     * Checks that {@code target} may be written by replacing it: it does not exist, or it is a regular
     * file (links followed). A FIFO, device node or folder is refused, so that nothing but a file is ever replaced.
     *
     * @param target the output path
     * @throws InvalidArgumentException naming the path when it exists and is not a regular file
     */
    public static void requireReplaceable(Path target) {
        if (!Files.exists(target, LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        String kind;
        try {
            kind = Files.exists(target) ? notRegular(target) : null; // a dangling link is replaced like a new path
        } catch (IOException e) {
            throw new InvalidArgumentException(target + ": cannot be examined: " + e.getMessage(), e);
        }
        if (kind != null) {
            throw new InvalidArgumentException(target + ": is " + kind
                    + "; an output must be a regular file or a new path (it is replaced atomically)");
        }
    }
}
