package dev.cdas.cli;

import dev.cdas.DType;
import dev.cdas.InvalidArgumentException;
import dev.cdas.model.Model;
import dev.cdas.model.ModelFolder;
import dev.cdas.model.RuntimeOptions;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Option;
import picocli.CommandLine.TypeConversionException;

/**
 * Where and how a command runs its model ({@code --device --devices --dtype --threads}), shared by
 * every command that runs one (a picocli mixin), and the one place a command opens its model.
 */
final class ModelOptions {
    // No picocli default: null tells "not given" from an explicit --device cpu, which --devices refuses.
    @Option(names = "--device", paramLabel = "DEV", converter = DeviceConverter.class,
            description = "cpu, cuda or cuda:N (default: cpu).")
    RuntimeOptions device;

    @Option(names = "--devices", paramLabel = "DEVS",
            description = "Layer split: the model's blocks in contiguous ranges over these devices, e.g. cuda:0,cuda:1 "
                    + "(cpu:0,cpu:1: CPU stages, for testing), or auto (every GPU, balanced by free memory; "
                    + "the CPU without one). Replaces --device; one device is the same as --device.")
    String devices;

    @Option(names = "--dtype", paramLabel = "TYPE", converter = DTypeConverter.class,
            description = "Compute in f32, bf16 or f16 (default: the checkpoint's; on a CPU without vector kernels "
                    + "for its half-precision products, f16 without AVX512-FP16 or bf16 without AVX-512, f32).")
    DType dtype;

    @Option(names = "--threads", paramLabel = "N", defaultValue = "0", description = "CPU threads of libtorch (0 = its default).")
    int threads;

    /** The runtime options these flags give. */
    RuntimeOptions options() {
        dev.cdas.Args.threads("--threads", threads);
        RuntimeOptions base = device != null ? device : RuntimeOptions.defaults();
        if (devices != null) {
            if (device != null) {
                throw new InvalidArgumentException("give --device or --devices, not both");
            }
            try {
                base = base.withDevices(devices);
            } catch (InvalidArgumentException e) {
                throw new InvalidArgumentException("--devices: " + e.getMessage());
            }
        }
        return base.withDtype(dtype).withThreads(threads);
    }

    /** The model of an open folder (its weights stay owned by the folder); says where a split put its blocks. */
    Model create(ModelFolder folder) {
        return announce(Model.create(folder.config(), folder.weights(), null, options()));
    }

    /** Prints a layer split's placement (once per model, on stderr) and returns the model. */
    static Model announce(Model m) {
        m.placement().ifPresent(p -> System.err.println("layer split: " + p));
        return m;
    }

    /** "cpu", "cuda" or "cuda:N" as {@link RuntimeOptions} with only the device set. */
    static final class DeviceConverter implements ITypeConverter<RuntimeOptions> {
        @Override
        public RuntimeOptions convert(String value) {
            try {
                return RuntimeOptions.defaults().withDevice(value);
            } catch (InvalidArgumentException e) {
                throw new TypeConversionException(e.getMessage());
            }
        }
    }

    /** "f32", "bf16" or "f16" (also float32, bfloat16, float16). */
    static final class DTypeConverter implements ITypeConverter<DType> {
        @Override
        public DType convert(String value) {
            try {
                return RuntimeOptions.parseDtype(value);
            } catch (InvalidArgumentException e) {
                throw new TypeConversionException(e.getMessage());
            }
        }
    }
}
