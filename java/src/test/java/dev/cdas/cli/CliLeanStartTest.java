package dev.cdas.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@link Main#commandLine}: a run naming a command builds only that one, and nothing a user sees changes. */
class CliLeanStartTest {
    private static List<String> commandNames() {
        List<String> names = new ArrayList<>();
        for (Class<?> c : Main.class.getAnnotation(Command.class).subcommands()) {
            if (c != CommandLine.HelpCommand.class) {
                names.add(c.getAnnotation(Command.class).name());
            }
        }
        return names;
    }

    private static String run(CommandLine cli, String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        int code = cli.execute(args);
        return "exit " + code + "\n" + out + "\n--- stderr\n" + err;
    }

    @Test
    void aNamedCommandGetsARootWithOnlyItAndTheSameUsageAndErrors() {
        List<String> names = commandNames();
        assertTrue(names.size() >= 9, names.toString());
        for (String name : names) {
            CommandLine lean = Main.commandLine(name, CommandLine.defaultFactory());
            assertEquals(Set.of(name), lean.getSubcommands().keySet(), name);
            CommandLine full = new CommandLine(new Main());
            assertEquals(full.getSubcommands().get(name).getUsageMessage(), lean.getSubcommands().get(name).getUsageMessage(), name);
            // Picocli's own errors (exit 2 and the command's usage), through each tree.
            String[] bad = {name, "--no-such-option-here"};
            assertEquals(run(new CommandLine(new Main()), bad), run(Main.commandLine(name, CommandLine.defaultFactory()), bad), name);
            String[] help = {name, "--help"};
            assertEquals(run(new CommandLine(new Main()), help), run(Main.commandLine(name, CommandLine.defaultFactory()), help), name);
        }
    }

    @Test
    void optionsHelpAndUnknownWordsGetTheWholeTree() {
        int all = new CommandLine(new Main()).getSubcommands().size();
        for (String first : new String[] {"--help", "-V", "help", "trian", ""}) {
            assertEquals(all, Main.commandLine(first, CommandLine.defaultFactory()).getSubcommands().size(), first);
        }
        String[] typo = {"trian", "--epochs", "1"};
        String fromMain = run(Main.commandLine("trian", CommandLine.defaultFactory()), typo);
        assertEquals(run(new CommandLine(new Main()), typo), fromMain);
        assertTrue(fromMain.contains("train"), fromMain);  // picocli's suggestion needs the whole tree
    }
}
