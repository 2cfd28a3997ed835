package dev.cdas;

import java.util.Set;

/** Library-wide facts about the loaded libcdas. */
public final class Cdas {
    private Cdas() {
    }

    /** "major.minor.patch" of the loaded library. */
    public static String version() {
        return NativeLibrary.load().versionString();
    }

    public static Set<Feature> features() {
        return NativeLibrary.load().features();
    }

    /** Usable CUDA devices (0 without CUDA support or without a GPU). */
    public static int cudaDeviceCount() {
        return NativeLibrary.load().cudaDevices();
    }
}
