package dev.cdas;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The first CPU of /proc/cpuinfo as the tests read it, independently of libcdas's CPUID code: its
 * vendor and its feature flags. A test on a system without the file is skipped (an assumption).
 *
 * @param amd   whether vendor_id is AuthenticAMD
 * @param flags the flags line's words
 */
public record ProcCpuInfo(boolean amd, List<String> flags) {
    /**
     * Reads /proc/cpuinfo.
     *
     * @return the vendor and flags
     * @throws IOException when the file exists but cannot be read
     */
    public static ProcCpuInfo read() throws IOException {
        Path cpuinfo = Path.of("/proc/cpuinfo");
        assumeTrue(Files.isReadable(cpuinfo), "no /proc/cpuinfo to tell the CPU's vendor and features");
        List<String> lines = Files.readAllLines(cpuinfo);
        boolean amd = lines.stream().anyMatch(l -> l.startsWith("vendor_id") && l.endsWith("AuthenticAMD"));
        List<String> flags = lines.stream().filter(l -> l.startsWith("flags")).findFirst()
                .map(l -> List.of(l.substring(l.indexOf(':') + 1).trim().split("\\s+"))).orElse(List.of());
        return new ProcCpuInfo(amd, flags);
    }

    /** {@return whether the flags include AVX-512 F, DQ, BW and VL} */
    public boolean avx512() {
        return flags.containsAll(List.of("avx512f", "avx512dq", "avx512bw", "avx512vl"));
    }
}
