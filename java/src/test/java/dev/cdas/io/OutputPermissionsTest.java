package dev.cdas.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.train.AtomicFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Outputs get the permissions the umask gives any new file, not the temporary file's 0600. */
class OutputPermissionsTest {
    @TempDir
    Path dir;

    @Test
    void outputsFollowTheUmask() throws IOException {
        Assumptions.assumeTrue(dir.getFileSystem().supportedFileAttributeViews().contains("posix"));
        // What this process's umask makes of a new file (there is no Java API for the umask itself).
        Set<PosixFilePermission> expected = Files.getPosixFilePermissions(Files.createFile(dir.resolve("reference")));
        Path small = dir.resolve("eval.json");
        AtomicFiles.write(small, "{}".getBytes());
        Path vector = dir.resolve("v.safetensors");
        new SafetensorsWriter().add("w", new long[] {2}, new float[] {1, 0}).write(vector);
        // Replacing an existing file: the new one's permissions, again from the umask.
        new SafetensorsWriter().add("w", new long[] {2}, new float[] {0, 1}).write(vector);
        for (Path p : new Path[] {small, vector}) {
            assertEquals(PosixFilePermissions.toString(expected), PosixFilePermissions.toString(Files.getPosixFilePermissions(p)), p.toString());
        }
        if (expected.contains(PosixFilePermission.GROUP_READ)) {
            assertTrue(Files.getPosixFilePermissions(vector).contains(PosixFilePermission.GROUP_READ), "0600 instead of the umask's mode");
        }
        try (var files = Files.list(dir)) {
            assertEquals(3, files.count(), "a temporary file was left behind");
        }
    }
}
