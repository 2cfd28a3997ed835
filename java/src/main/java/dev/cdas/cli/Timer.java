package dev.cdas.cli;

import java.util.Arrays;

/** Wall-clock medians: one warm-up run, then {@code repeats} timed runs. */
final class Timer {
    private Timer() {
    }

    static double medianMillis(int repeats, Runnable work) {
        work.run();
        double[] ms = new double[Math.max(1, repeats)];
        for (int i = 0; i < ms.length; i++) {
            long start = System.nanoTime();
            work.run();
            ms[i] = (System.nanoTime() - start) / 1e6;
        }
        Arrays.sort(ms);
        return ms.length % 2 == 1 ? ms[ms.length / 2] : (ms[ms.length / 2 - 1] + ms[ms.length / 2]) / 2;
    }
}
