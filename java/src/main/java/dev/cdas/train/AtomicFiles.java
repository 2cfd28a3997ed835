package dev.cdas.train;

import dev.cdas.io.OutputFiles;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;

/**
 * Writes small files atomically: temporary file in the same folder, fsync, rename over the target.
 * The file gets the permissions the user's umask gives new files.
 */
public final class AtomicFiles {
    private AtomicFiles() {}

    /**
     * Replaces {@code target} with {@code bytes}, creating its folder.
     *
     * @param target the file to write
     * @param bytes  its whole content
     * @throws dev.cdas.InvalidArgumentException when {@code target} exists and is not a regular file
     * @throws IOException                      when it cannot be written (the message names the file)
     */
    public static void write(Path target, byte[] bytes) throws IOException {
        dev.cdas.io.InputFiles.requireReplaceable(target);
        Path dir = target.toAbsolutePath().getParent();
        Files.createDirectories(dir);
        Path tmp;
        try {
            tmp = OutputFiles.createTemp(dir, target.getFileName().toString()); // the umask's permissions, not 0600
        } catch (IOException e) {
            throw OutputFiles.writeFailed(target, e);
        }
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                OutputFiles.writeFully(ch, java.nio.ByteBuffer.wrap(bytes));
                ch.force(true);
            }
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            throw OutputFiles.writeFailed(target, e);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }
}
