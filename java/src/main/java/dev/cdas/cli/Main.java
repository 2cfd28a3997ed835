package dev.cdas.cli;

import dev.cdas.CdasException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code java -jar cdas-native.jar [command]}; without a command it runs {@code train} on the bundled demo. */
@Command(name = "cdas-native", mixinStandardHelpOptions = true, versionProvider = VersionCommand.Provider.class,
        description = "Trains and applies CDAS steering vectors with fused native kernels.",
        subcommands = {TrainCommand.class, SteerCommand.class, ObjectiveCommand.class, EvalCommand.class, DemoCommand.class, LogitsCommand.class, VersionCommand.class, CommandLine.HelpCommand.class})
public final class Main {

    public static void main(String[] args) {
        System.exit(run(args));
    }

    static int run(String... args) {
        // One line per log record instead of java.util.logging's two-line default.
        if (System.getProperty("java.util.logging.SimpleFormatter.format") == null) {
            System.setProperty("java.util.logging.SimpleFormatter.format", "[%4$s] %5$s%6$s%n");
        }
        CommandLine cli = new CommandLine(new Main())
                .setExecutionExceptionHandler((e, cmd, parsed) -> {
                    // Bad input (native or Java checks, malformed model files) is the user's to fix: one line, no trace.
                    if (e instanceof CdasException || e instanceof java.io.IOException
                            || e instanceof IllegalArgumentException || e instanceof IllegalStateException
                            || e instanceof ArithmeticException) {
                        cmd.getErr().println("error: " + e.getMessage());
                        return 2;
                    }
                    throw e;
                });
        try {
            return cli.execute(args.length == 0 ? new String[] {"train"} : args);
        } catch (UnsatisfiedLinkError e) {
            // libcdas missing or the wrong version: the message says where it looked and what to do.
            System.err.println("error: " + e.getMessage());
            return 2;
        }
    }
}
