package dev.cdas.cli;

import dev.cdas.Cdas;
import dev.cdas.NativeLibrary;
import dev.cdas.bindings.cdas_h;
import picocli.CommandLine.Command;
import picocli.CommandLine.IVersionProvider;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "version", mixinStandardHelpOptions = true,
        header = "Prints the library's build and run-time versions.",
        description = "Prints the version of libcdas, where it was loaded from, its build features, the torch and "
                + "CUDA it was built against and the torch, CUDA driver and CUDA kernels it finds at run time.")
final class VersionCommand implements Callable<Integer> {

    @Override
    public Integer call() {
        for (String line : lines()) {
            System.out.println(line);
        }
        return 0;
    }

    static String[] lines() {
        NativeLibrary.Info info = NativeLibrary.load();
        List<String> lines = new ArrayList<>(List.of(
            "cdas-native " + Cdas.version(),
            "library:  " + info.path(),
            "features: " + (info.features().isEmpty() ? "none (CPU kernels only)" : info.features()),
            "CUDA devices: " + info.cudaDevices(),
            "java:     " + Runtime.version() + " (" + System.getProperty("java.vm.name") + ")"));
        lines.addAll(buildInfo());
        return lines.toArray(String[]::new);
    }

    /** cdas_build_info(): what libcdas was built against and what it finds at run time, one fact a line. */
    static List<String> buildInfo() {
        MemorySegment text = cdas_h.cdas_build_info();
        if (text.equals(MemorySegment.NULL)) {
            return List.of();
        }
        return text.reinterpret(Long.MAX_VALUE).getString(0).lines().filter(l -> !l.isBlank()).toList();
    }

    static final class Provider implements IVersionProvider {
        @Override
        public String[] getVersion() {
            return lines();
        }
    }
}
