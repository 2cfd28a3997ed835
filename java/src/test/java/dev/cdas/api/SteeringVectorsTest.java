package dev.cdas.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.bindings.cdas_h;
import dev.cdas.model.Fixtures;
import dev.cdas.train.SteeringVectorFile;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.PrintStream;
import java.io.StringWriter;
import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SteeringVectorsTest {
    @TempDir
    Path dir;

    /**
     * The example of package-info.java, taken from that file's text, compiled with javac and run
     * (tiny fixture model, two pairs): the javadoc cannot drift from code that compiles and works.
     */
    @Test
    void packageExample() throws Exception {
        Path modelDir = Fixtures.dir("llama");
        Path pairsFile = dir.resolve("pairs.jsonl");
        Files.writeString(pairsFile, """
                {"negative_input": "Hello", "negative_output": "fine", "positive_input": "Tell me", "positive_output": "sea tea", "concept": "sea", "concept_id": 1}
                {"negative_input": "How are you", "negative_output": "good", "positive_input": "Write", "positive_output": "the sea", "concept": "sea", "concept_id": 1}
                """);
        Path outFile = dir.resolve("sea.safetensors");

        Method example = compileExample(packageInfoExample());
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        PrintStream stdout = System.out;
        System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            example.invoke(null, modelDir, pairsFile, outFile);
        } finally {
            System.setOut(stdout);
        }

        SteeringVectorFile written = SteeringVectorFile.read(outFile);
        assertEquals(1, written.layer());
        assertEquals("sea", written.concept());
        assertEquals("cdas", written.method());
        // Two steps (2 epochs x 1 batch) reported through the listener, then the reply.
        String printed = captured.toString(StandardCharsets.UTF_8);
        String[] lines = printed.split("\n", 3);
        assertEquals(3, lines.length, printed);
        assertTrue(lines[0].startsWith("train 1/2 "), printed);
        assertTrue(lines[1].startsWith("train 2/2 "), printed);
        assertTrue(lines[2].endsWith("\n"), "the reply, printed last: " + printed);
    }

    /** The code between {@code <pre>{@code} and its closing brace in package-info.java, without the javadoc stars. */
    private static String packageInfoExample() throws Exception {
        Path root = Path.of(System.getProperty("cdas.project.dir", "..")).toAbsolutePath().normalize();
        String text = Files.readString(root.resolve("java/src/main/java/dev/cdas/api/package-info.java"));
        Matcher m = Pattern.compile("<pre>\\{@code\\n(.*?)\\n \\* }</pre>", Pattern.DOTALL).matcher(text);
        assertTrue(m.find(), "package-info.java has no <pre>{@code ...}</pre> example");
        StringBuilder code = new StringBuilder();
        for (String line : m.group(1).split("\n")) {
            code.append(line.replaceFirst("^ \\* ?", "")).append('\n');
        }
        return code.toString();
    }

    /** Compiles the example as the body of {@code static void run(Path modelDir, Path pairsFile, Path outFile)}. */
    private Method compileExample(String body) throws Exception {
        String source = """
                import dev.cdas.api.*;
                import dev.cdas.data.*;
                import dev.cdas.model.*;
                import dev.cdas.train.*;
                import java.nio.file.*;
                import java.util.*;

                public class PackageExample {
                    public static void run(Path modelDir, Path pairsFile, Path outFile) throws Exception {
                %s    }
                }
                """.formatted(body);
        Path src = dir.resolve("src/PackageExample.java");
        Path classes = dir.resolve("classes");
        Files.createDirectories(src.getParent());
        Files.createDirectories(classes);
        Files.writeString(src, source);

        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        assertNotNull(javac, "no system Java compiler (tests need a JDK)");
        StringWriter diagnostics = new StringWriter();
        boolean ok = javac.getTask(diagnostics, null, null,
                List.of("-d", classes.toString(), "-classpath", classPath(), "-proc:none"), null,
                javac.getStandardFileManager(null, null, StandardCharsets.UTF_8).getJavaFileObjects(src.toFile())).call();
        assertTrue(ok, "the package-info example does not compile:\n" + diagnostics + "\n" + source);

        ClassLoader loader = new URLClassLoader(new URL[] {classes.toUri().toURL()}, getClass().getClassLoader());
        return loader.loadClass("PackageExample").getMethod("run", Path.class, Path.class, Path.class);
    }

    /** The library's classes, the bindings and whatever the test JVM was started with. */
    private static String classPath() throws Exception {
        Set<String> entries = new LinkedHashSet<>();
        for (Class<?> c : List.of(SteeringVectors.class, cdas_h.class)) {
            entries.add(Path.of(c.getProtectionDomain().getCodeSource().getLocation().toURI()).toString());
        }
        List<String> more = new ArrayList<>();
        more.add(System.getProperty("surefire.test.class.path", ""));
        more.add(System.getProperty("java.class.path", ""));
        for (String path : more) {
            for (String entry : path.split(File.pathSeparator)) {
                if (!entry.isBlank()) {
                    entries.add(entry);
                }
            }
        }
        return String.join(File.pathSeparator, entries);
    }
}
