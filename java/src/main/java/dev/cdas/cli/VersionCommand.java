package dev.cdas.cli;

import dev.cdas.Cdas;
import dev.cdas.NativeLibrary;
import picocli.CommandLine.Command;
import picocli.CommandLine.IVersionProvider;

import java.util.concurrent.Callable;

@Command(name = "version", mixinStandardHelpOptions = true,
        description = "Prints the version of libcdas, where it was loaded from and its build features.")
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
        return new String[] {
            "cdas-native " + Cdas.version(),
            "library:  " + info.path(),
            "features: " + (info.features().isEmpty() ? "none (CPU kernels only)" : info.features()),
            "CUDA devices: " + info.cudaDevices(),
            "java:     " + Runtime.version() + " (" + System.getProperty("java.vm.name") + ")",
        };
    }

    static final class Provider implements IVersionProvider {
        @Override
        public String[] getVersion() {
            return lines();
        }
    }
}
