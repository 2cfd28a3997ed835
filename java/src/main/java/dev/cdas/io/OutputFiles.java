package dev.cdas.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.ThreadLocalRandom;

/**
 * The temporary files that outputs are written to before being renamed over their target. Unlike
 * {@link Files#createTempFile}, which makes them readable by the owner only (0600), these are created
 * with the default mode, so the renamed output has the permissions the user's umask gives any new
 * file (0644 under the usual umask 022).
 */
public final class OutputFiles {
    private OutputFiles() {}

    /**
     * Creates an empty new file {@code .<name>.<random>.tmp} in {@code dir}, with the umask's permissions.
     *
     * @param dir        the folder the target will be in (the rename must not cross file systems)
     * @param targetName the target's file name, for the temporary file's name
     * @return the new, empty file
     * @throws IOException when it cannot be created (no such folder, no permission, a full disk)
     */
    public static Path createTemp(Path dir, String targetName) throws IOException {
        for (int attempt = 0; ; attempt++) {
            Path tmp = dir.resolve("." + targetName + "." + Long.toUnsignedString(ThreadLocalRandom.current().nextLong(), 36) + ".tmp");
            try {
                return Files.createFile(tmp); // no attributes: open(O_CREAT | O_EXCL, 0666), then the umask
            } catch (FileAlreadyExistsException e) {
                if (attempt >= 100) {
                    throw e;
                }
            }
        }
    }

    /**
     * Writes every remaining byte of {@code buffer} with {@code write(2)}. Outputs are never written
     * through a memory mapping: on a full disk a mapped page that cannot be allocated faults
     * (SIGBUS, an {@code InternalError} in Java) instead of failing the write with ENOSPC.
     *
     * @param channel the file being written
     * @param buffer  the bytes to write, from its position to its limit
     * @throws IOException when a write fails (ENOSPC, EFBIG, an I/O error)
     */
    public static void writeFully(FileChannel channel, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            channel.write(buffer);
        }
    }

    /**
     * The error for an output that could not be written (a full disk, a file size limit, an I/O
     * error): one line naming the file and the reason, e.g. {@code cannot write /out/v.safetensors:
     * No space left on device}. The previous file, if any, is left as it was.
     *
     * @param target the output that was being written
     * @param cause  what failed
     * @return an IOException with that message, {@code cause} as its cause
     */
    public static IOException writeFailed(Path target, IOException cause) {
        Path parent = target.toAbsolutePath().getParent();
        String reason = switch (cause) {
            case NoSuchFileException e when parent != null && !Files.isDirectory(parent) -> "the folder " + parent + " does not exist";
            case AccessDeniedException e -> "permission denied";
            case FileSystemException fs when fs.getReason() != null -> fs.getReason();
            default -> cause.getMessage();
        };
        return new IOException("cannot write " + target.toAbsolutePath() + ": " + (reason == null ? cause.getClass().getSimpleName() : reason)
                + " (the previous file, if any, is unchanged)", cause);
    }
}
