package dev.cdas.cli;

import dev.cdas.CdasException;
import dev.cdas.InternalException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Map;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code java -jar cdas-native.jar [command]}; without a command it runs {@code train} on the bundled demo. */
@Command(name = "cdas-native", mixinStandardHelpOptions = true, versionProvider = VersionCommand.Provider.class,
        description = {"Trains and applies CDAS steering vectors with fused native kernels.",
            "Without a command it runs train on the bundled demo.",
            "The method is described in docs/method.md of the cdas-native repository.",
            "Every command and option is described in docs/cli.md there."},
        footer = {"%nProgress goes to stderr: a bar on a terminal; otherwise (a log file) a line",
            "per task every 30 s and one at its end. CDAS_PROGRESS=auto|bar|lines|off",
            "chooses, CDAS_PROGRESS_SECONDS=N sets the interval."},
        subcommands = {TrainCommand.class, SteerCommand.class, ObjectiveCommand.class, EvalCommand.class, McCommand.class, EvaluateCommand.class, DemoCommand.class, LogitsCommand.class, MergeCommand.class, VersionCommand.class, CommandLine.HelpCommand.class})
public final class Main {
    /** Exit code of an input error the user can fix (one line on stderr). */
    public static final int INPUT_ERROR = 2;
    /** Exit code of an internal error (a bug): the stack trace goes to stderr. */
    public static final int INTERNAL_ERROR = 3;
    /** JNA's switch against unpacking its native stub (set by {@link #run} unless already set). */
    static final String JNA_NO_UNPACK = "jna.nounpack";

    public static void main(String[] args) {
        System.exit(run(args));
    }

    static int run(String... args) {
        return run(System.getenv(), args);
    }

    /** As {@link #run(String...)} with {@code env} as the launcher's environment that train reads its shard from. */
    static int run(Map<String, String> env, String... args) {
        // One line per log record instead of java.util.logging's two-line default.
        if (System.getProperty("java.util.logging.SimpleFormatter.format") == null) {
            System.setProperty("java.util.logging.SimpleFormatter.format", "[%4$s] %5$s%6$s%n");
        }
        // DJL's tokenizers probe for a GPU through JNA before loading (to pick a CUDA build of the
        // tokenizers library, which offline use never takes): JNA unpacks its native stub into
        // ~/.cache/JNA and runs `ldconfig -p`, about 0.08 s of every process on one core. Nothing in
        // the command line needs JNA, so it is told not to unpack: the probe then finds no GPU at
        // once. A library user's process is left alone (this is the command line's main only).
        if (System.getProperty(JNA_NO_UNPACK) == null) {
            System.setProperty(JNA_NO_UNPACK, "true");
        }
        CommandLine.IFactory defaults = CommandLine.defaultFactory();
        CommandLine.IFactory factory = new CommandLine.IFactory() {
            @Override
            public <K> K create(Class<K> cls) throws Exception {
                K made = defaults.create(cls);
                if (made instanceof TrainCommand train) {
                    train.environment = env;
                }
                return made;
            }
        };
        CommandLine cli = commandLine(args.length == 0 ? "train" : args[0], factory)
                .setExecutionExceptionHandler((e, cmd, parsed) -> {
                    // Bad input (the library's and native checks, malformed or missing files) is the user's
                    // to fix: one line, no trace. Anything else is a bug: its trace, and another exit code.
                    if (isInputError(e)) {
                        cmd.getErr().println("error: " + e.getMessage());
                        return INPUT_ERROR;
                    }
                    cmd.getErr().println("internal error (please report it with this trace):");
                    e.printStackTrace(cmd.getErr());
                    return INTERNAL_ERROR;
                });
        try {
            return cli.execute(args.length == 0 ? new String[] {"train"} : args);
        } catch (UnsatisfiedLinkError e) {
            // libcdas missing or the wrong version: the message says where it looked and what to do.
            System.err.println("error: " + e.getMessage());
            return INPUT_ERROR;
        }
    }

    /**
     * The command line for a run whose first argument is {@code first}. When that names a command,
     * the root gets only that one: picocli builds a command's model by reflection over its options
     * when the command is added, about a quarter of a second for all of them at a process's start
     * (half of it for train alone), paid by every shard and every scripted call. Otherwise (options
     * such as --help or --version, help, a misspelt command) the whole tree, for the root's usage and
     * picocli's suggestions. A command's own parsing, usage and errors are the same either way
     * (CliLeanStartTest compares them).
     */
    static CommandLine commandLine(String first, CommandLine.IFactory factory) {
        for (Class<?> command : Main.class.getAnnotation(Command.class).subcommands()) {
            Command spec = command.getAnnotation(Command.class);
            if (spec != null && spec.name().equals(first) && command != CommandLine.HelpCommand.class) {
                try {
                    return new CommandLine(new Root(), factory).addSubcommand(first, factory.create(command));
                } catch (Exception e) {
                    throw new IllegalStateException("cannot create the " + first + " command", e);
                }
            }
        }
        return new CommandLine(new Main(), factory);
    }

    /** {@link Main} without its subcommands: the root of {@link #commandLine} with one command added. */
    @Command(name = "cdas-native", mixinStandardHelpOptions = true, versionProvider = VersionCommand.Provider.class)
    static final class Root {
    }

    /** The project's exceptions (except internal ones) and I/O failures; never the JDK's unchecked ones. */
    static boolean isInputError(Throwable e) {
        return (e instanceof CdasException && !(e instanceof InternalException))
                || e instanceof IOException || e instanceof UncheckedIOException;
    }
}
