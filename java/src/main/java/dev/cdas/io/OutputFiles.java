package dev.cdas.io;

import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
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

    /** Creates an empty new file {@code .<name>.<random>.tmp} in {@code dir}, with the umask's permissions. */
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
}
