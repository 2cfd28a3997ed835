package dev.cdas;

import java.util.Set;

/** Library-wide facts about the loaded libcdas. */
public final class Cdas {
    private Cdas() {
    }

    /**
     * "major.minor.patch" of the loaded library.
     *
     * @return the version, for example "0.1.0"
     * @throws UnsatisfiedLinkError when libcdas cannot be loaded ({@link NativeLibrary#load()})
     */
    public static String version() {
        return NativeLibrary.load().versionString();
    }

    /**
     * The optional parts the loaded libcdas was built with.
     *
     * @return the features (empty for a build without libtorch and CUDA)
     * @throws UnsatisfiedLinkError when libcdas cannot be loaded ({@link NativeLibrary#load()})
     */
    public static Set<Feature> features() {
        return NativeLibrary.load().features();
    }

    /**
     * Usable CUDA devices (0 without CUDA support or without a GPU).
     *
     * @return the number of devices
     * @throws UnsatisfiedLinkError when libcdas cannot be loaded ({@link NativeLibrary#load()})
     */
    public static int cudaDeviceCount() {
        return NativeLibrary.load().cudaDevices();
    }
}
