package dev.cdas.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * docs/cli.md is the command line's own help, command by command: it must be what the commands
 * print now. {@code CDAS_UPDATE_CLI_DOC=1} in the environment rewrites it instead of failing
 * (for example {@code CDAS_UPDATE_CLI_DOC=1 mvn -pl cli -am test -Dtest=CliReferenceTest
 * -Dsurefire.failIfNoSpecifiedTests=false}). Also: every line of the top-level command list is
 * one complete sentence, and no help text points outside the repository.
 */
class CliReferenceTest {
    static final String INTRO = """
            # cdas-native command line reference

            Every command of `bin/cdas-native` (or `java -jar cdas-native.jar`) with all its options, exactly
            as its `--help` prints it. Generated from the commands themselves: `CliReferenceTest` fails when
            this file is out of date, and rewrites it when run with `CDAS_UPDATE_CLI_DOC=1` in the
            environment. Exit codes: 0 success, 1 the launcher found no Java 25, 2 an input error (one line
            naming the problem and the file), 3 an internal error (a stack trace). The method behind `train`
            is in [method.md](method.md), the files the commands read and write in
            [file-formats.md](file-formats.md).
            """;

    static String usage(CommandLine cmd) {
        return cmd.getUsageMessage(CommandLine.Help.Ansi.OFF).stripTrailing();
    }

    static String reference() {
        CommandLine top = new CommandLine(new Main());
        StringBuilder sb = new StringBuilder(INTRO);
        sb.append("\n## cdas-native\n\n```\n").append(usage(top)).append("\n```\n");
        for (var e : top.getSubcommands().entrySet()) {
            sb.append("\n## ").append(e.getKey()).append("\n\n```\n").append(usage(e.getValue())).append("\n```\n");
        }
        return sb.toString();
    }

    @Test
    void docsCliMdIsCurrent() throws IOException {
        Path doc = Path.of(System.getProperty("cdas.project.dir"), "docs", "cli.md");
        String now = reference();
        if ("1".equals(System.getenv("CDAS_UPDATE_CLI_DOC"))) {
            Files.writeString(doc, now, StandardCharsets.UTF_8);
        }
        assertEquals(now, Files.readString(doc, StandardCharsets.UTF_8),
                "docs/cli.md is out of date: rerun this test with CDAS_UPDATE_CLI_DOC=1 in the environment and commit the file");
    }

    @Test
    void everyTopLevelHelpLineIsOneCompleteSentence() {
        String help = usage(new CommandLine(new Main()));
        // The command list: "  name  Text.", continuation lines would start with deep indentation.
        List<String> lines = help.lines().toList();
        int start = lines.indexOf("Commands:");
        assertTrue(start > 0, help);
        List<String> entries = new ArrayList<>();
        Pattern entry = Pattern.compile("^  (\\S+)\\s+(.*)$");
        for (String line : lines.subList(start + 1, lines.size())) {
            if (line.isBlank()) {
                break; // the footer (progress and its environment variables) follows the list
            }
            Matcher m = entry.matcher(line);
            assertTrue(m.matches(), "a command's description runs over one line: \"" + line + "\"");
            entries.add(m.group(2));
        }
        assertTrue(entries.size() >= 7, entries.toString());
        // And the description and option lines above the command list.
        for (String line : lines.subList(0, start)) {
            String t = line.strip();
            if (t.isEmpty() || t.startsWith("Usage:") || t.startsWith("[") || t.startsWith("[COMMAND]")) {
                continue;
            }
            entries.add(t.replaceFirst("^-\\S+, --\\S+\\s+", ""));
        }
        Pattern sentence = Pattern.compile("^[A-Z][^.]*(\\.[^.\\s][^.]*)*\\.$");
        for (String s : entries) {
            assertTrue(sentence.matcher(s).matches(), "not one complete sentence: \"" + s + "\"");
        }
    }

    @Test
    void helpPointsOnlyInsideTheRepository() {
        String all = reference();
        assertFalse(all.contains("DESIGN.md") || all.contains("shared/docs"), "help refers outside the repository");
        Matcher m = Pattern.compile("docs/[A-Za-z0-9_.-]+\\.md").matcher(all);
        Path docs = Path.of(System.getProperty("cdas.project.dir"));
        while (m.find()) {
            assertTrue(Files.isRegularFile(docs.resolve(m.group())), "help names a missing file: " + m.group());
        }
    }
}
