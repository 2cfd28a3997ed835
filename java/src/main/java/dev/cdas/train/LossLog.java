package dev.cdas.train;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/** The loss curve: one row per optimiser step, saved as CSV and as a PNG plot. */
public final class LossLog {
    /**
     * One optimiser step.
     *
     * @param step     the step, 0-based
     * @param epoch    the epoch it belongs to, 0-based
     * @param loss     the minibatch's loss, in nats
     * @param gradNorm the gradient's L2 norm before clipping
     * @param lr       the learning rate used
     * @param tokens   the response tokens the loss was pooled over
     */
    public record Entry(long step, int epoch, double loss, double gradNorm, double lr, long tokens) {}

    private final List<Entry> entries = new ArrayList<>();

    /** An empty log. */
    public LossLog() {
    }

    /**
     * Appends a step.
     *
     * @param e the step's entry
     */
    public void add(Entry e) {
        entries.add(e);
    }

    /** {@return a copy of the entries, in step order} */
    public List<Entry> entries() {
        return List.copyOf(entries);
    }

    /** {@return the number of entries} */
    public int size() {
        return entries.size();
    }

    /**
     * The log as CSV: the header {@code step,epoch,loss,grad_norm,lr,tokens}, then one line per step.
     *
     * @return the CSV text
     */
    public String toCsv() {
        StringBuilder sb = new StringBuilder("step,epoch,loss,grad_norm,lr,tokens\n");
        for (Entry e : entries) {
            sb.append(e.step()).append(',').append(e.epoch()).append(',')
                    .append(Double.toString(e.loss())).append(',').append(Double.toString(e.gradNorm())).append(',')
                    .append(Double.toString(e.lr())).append(',').append(e.tokens()).append('\n');
        }
        return sb.toString();
    }

    /**
     * Writes {@link #toCsv} to {@code file} atomically.
     *
     * @param file the CSV file
     * @throws IOException when it cannot be written (the message names it)
     */
    public void writeCsv(Path file) throws IOException {
        AtomicFiles.write(file, toCsv().getBytes(StandardCharsets.UTF_8));
    }

    /**
     * Loss per step and its moving average over one epoch's worth of steps.
     *
     * @param file          the PNG file
     * @param title         the plot's title
     * @param stepsPerEpoch the moving average's window
     * @throws IllegalStateException when the log is empty
     * @throws IOException           when the file cannot be written
     */
    public void writePng(Path file, String title, int stepsPerEpoch) throws IOException {
        if (entries.isEmpty()) {
            throw new IllegalStateException("no loss values to plot");
        }
        double[] x = new double[entries.size()];
        double[] y = new double[entries.size()];
        double[] avg = new double[entries.size()];
        int window = Math.max(1, stepsPerEpoch);
        double run = 0;
        for (int i = 0; i < x.length; i++) {
            x[i] = entries.get(i).step() + 1;
            y[i] = entries.get(i).loss();
            run += y[i];
            if (i >= window) {
                run -= y[i - window];
            }
            avg[i] = run / Math.min(i + 1, window);
        }
        AtomicFiles.write(file, LossPlot.png(title, "step", "loss", x, List.of(new LossPlot.Series("loss", y),
                new LossPlot.Series(String.format(Locale.ROOT, "mean of last %d steps", window), avg))));
    }
}
