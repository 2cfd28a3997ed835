package dev.cdas.fuzz;

import static org.junit.platform.engine.discovery.DiscoverySelectors.selectMethod;

import org.junit.platform.launcher.Launcher;
import org.junit.platform.launcher.LauncherDiscoveryRequest;
import org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder;
import org.junit.platform.launcher.core.LauncherFactory;
import org.junit.platform.launcher.listeners.SummaryGeneratingListener;
import org.junit.platform.launcher.listeners.TestExecutionSummary;

/**
 * Runs one {@code @FuzzTest} method through the JUnit Platform, for scripts/fuzz.sh: with
 * {@code JAZZER_FUZZ=1} in the environment Jazzer fuzzes it (the libFuzzer flags come as
 * {@code jazzer.internal.arg.N} system properties); without it the committed inputs replay.
 * Usage: {@code FuzzMain dev.cdas.io.SafetensorsFuzzTest#safetensors}. Exit status 0 when the
 * method ran and nothing failed, 1 otherwise.
 */
public final class FuzzMain {
    private FuzzMain() {}

    public static void main(String[] args) {
        if (args.length != 1 || !args[0].contains("#")) {
            System.err.println("usage: FuzzMain CLASS#METHOD");
            System.exit(2);
        }
        String[] parts = args[0].split("#", 2);
        LauncherDiscoveryRequest request = LauncherDiscoveryRequestBuilder.request()
                .selectors(selectMethod(parts[0], parts[1], "byte[]"))
                .build();
        Launcher launcher = LauncherFactory.create();
        SummaryGeneratingListener listener = new SummaryGeneratingListener();
        launcher.execute(request, listener);
        TestExecutionSummary summary = listener.getSummary();
        summary.printFailuresTo(new java.io.PrintWriter(System.out, true), 30);
        System.out.println("fuzz " + args[0] + ": " + summary.getTestsSucceededCount() + " succeeded, "
                + summary.getTotalFailureCount() + " failed");
        System.exit(summary.getTotalFailureCount() == 0 && summary.getTestsSucceededCount() > 0 ? 0 : 1);
    }
}
