package dev.cdas.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Color;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LossPlotTest {
    @Test
    void ticksAreRoundAndCoverTheRange() {
        Random rnd = new Random(7);
        for (int trial = 0; trial < 2000; trial++) {
            double lo = (rnd.nextDouble() - 0.5) * Math.pow(10, rnd.nextInt(8) - 4);
            double hi = lo + rnd.nextDouble() * Math.pow(10, rnd.nextInt(8) - 4) + 1e-9;
            int max = 2 + rnd.nextInt(8);
            double[] t = LossPlot.ticks(lo, hi, max);
            String what = "[" + lo + ", " + hi + "] max " + max + ": " + java.util.Arrays.toString(t);
            assertTrue(t.length >= 2 && t.length <= max + 1, what);
            assertTrue(t[0] <= lo && t[t.length - 1] >= hi, what);
            double step = t[1] - t[0];
            double mantissa = step / Math.pow(10, Math.floor(Math.log10(step) + 1e-9));
            assertTrue(Math.abs(mantissa - 1) < 1e-6 || Math.abs(mantissa - 2) < 1e-6 || Math.abs(mantissa - 5) < 1e-6
                    || Math.abs(mantissa - 10) < 1e-6, what);
            for (int i = 1; i < t.length; i++) {
                assertEquals(step, t[i] - t[i - 1], step * 1e-6, what);
            }
        }
        assertEquals("0.25", LossPlot.format(0.25, new double[] {0, 0.05}));
        assertEquals("40", LossPlot.format(40, new double[] {0, 20}));
        assertEquals("0.0", LossPlot.format(1e-17, new double[] {0, 0.5}));
    }

    @Test
    void eachPointIsDrawnWhereTheAxesPutIt() throws Exception {
        int n = 60;
        double[] x = new double[n];
        double[] loss = new double[n];
        double[] mean = new double[n];
        for (int i = 0; i < n; i++) {
            x[i] = i + 1;
            loss[i] = 0.7 * Math.exp(-i / 15.0) + 0.05 * Math.sin(i);
            mean[i] = 0.7 * Math.exp(-i / 15.0) - 0.02;
        }
        byte[] png = LossPlot.png("a concept", "step", "loss", x, List.of(new LossPlot.Series("loss", loss),
                new LossPlot.Series("mean of last 4 steps", mean)));
        assertEquals((byte) 0x89, png[0]);
        BufferedImage image = ImageIO.read(new ByteArrayInputStream(png));
        assertEquals(LossPlot.WIDTH, image.getWidth());
        assertEquals(LossPlot.HEIGHT, image.getHeight());
        // The axes as the plot chose them: the ticks' span.
        double[] xt = LossPlot.ticks(1, n, 8);
        double[] yr = LossPlot.range(loss, mean);
        double[] yt = LossPlot.ticks(yr[0], yr[1], 6);
        int plotW = LossPlot.WIDTH - LossPlot.LEFT - LossPlot.RIGHT;
        int plotH = LossPlot.HEIGHT - LossPlot.TOP - LossPlot.BOTTOM;
        for (int s = 0; s < 2; s++) {
            double[] y = s == 0 ? loss : mean;
            int seen = 0;
            for (int i = 0; i < n; i++) {
                int px = (int) Math.round(LossPlot.px(x[i], xt[0], xt[xt.length - 1], plotW));
                int py = (int) Math.round(LossPlot.py(y[i], yt[0], yt[yt.length - 1], plotH));
                if (nearColor(image, px, py, LossPlot.SERIES_COLORS[s], 2)) {
                    seen++;
                }
            }
            // The other series may cover a few points where the two cross.
            assertTrue(seen >= n - 3, "series " + s + ": " + seen + " of " + n + " points drawn where expected");
        }
        // Nothing of either series far from its points: the lower left corner (small steps, high loss
        // is top left; the curves decay) holds only background and grid.
        int lx = LossPlot.LEFT + plotW / 2;
        int ly = LossPlot.TOP + plotH / 8;
        for (int s = 0; s < 2; s++) {
            assertFalse(nearColor(image, lx, ly, LossPlot.SERIES_COLORS[s], 5), "series " + s + " drawn where it has no point");
        }
    }

    @Test
    void nonFiniteValuesLeaveAGap() throws Exception {
        int n = 40;
        double[] x = new double[n];
        double[] y = new double[n];
        for (int i = 0; i < n; i++) {
            x[i] = i + 1;
            y[i] = 1.0;
        }
        y[9] = Double.NaN;
        y[10] = Double.POSITIVE_INFINITY;
        y[11] = Double.NaN;
        BufferedImage image = LossPlot.render("t", "step", "loss", x, List.of(new LossPlot.Series("loss", y)));
        double[] xt = LossPlot.ticks(1, n, 8);
        double[] yr = LossPlot.range(y);
        double[] yt = LossPlot.ticks(yr[0], yr[1], 6);
        int plotW = LossPlot.WIDTH - LossPlot.LEFT - LossPlot.RIGHT;
        int plotH = LossPlot.HEIGHT - LossPlot.TOP - LossPlot.BOTTOM;
        int py = (int) Math.round(LossPlot.py(1.0, yt[0], yt[yt.length - 1], plotH));
        int gap = (int) Math.round(LossPlot.px(11, xt[0], xt[xt.length - 1], plotW));
        int drawn = (int) Math.round(LossPlot.px(20, xt[0], xt[xt.length - 1], plotW));
        assertTrue(nearColor(image, drawn, py, LossPlot.SERIES_COLORS[0], 1), "the finite part is drawn");
        assertFalse(nearColor(image, gap, py, LossPlot.SERIES_COLORS[0], 3), "a line across the non-finite values");
    }

    @Test
    void aConstantOrSingleStepLogStillPlots(@TempDir Path dir) throws Exception {
        LossLog one = new LossLog();
        one.add(new LossLog.Entry(0, 0, 0.5, 1, 0.01, 10));
        one.writePng(dir.resolve("one.png"), "one step", 4);
        LossLog flat = new LossLog();
        for (int i = 0; i < 10; i++) {
            flat.add(new LossLog.Entry(i, i / 4, 0.0, 1, 0.01, 10));
        }
        flat.writePng(dir.resolve("flat.png"), "flat", 4);
        for (String f : new String[] {"one.png", "flat.png"}) {
            BufferedImage image = ImageIO.read(Files.newInputStream(dir.resolve(f)));
            assertEquals(LossPlot.WIDTH, image.getWidth(), f);
        }
    }

    /** Whether a pixel within r of (x, y) is close to color c. */
    private static boolean nearColor(BufferedImage image, int x, int y, Color c, int r) {
        for (int dy = -r; dy <= r; dy++) {
            for (int dx = -r; dx <= r; dx++) {
                int px = x + dx;
                int py = y + dy;
                if (px < 0 || py < 0 || px >= image.getWidth() || py >= image.getHeight()) {
                    continue;
                }
                Color p = new Color(image.getRGB(px, py));
                int d = Math.abs(p.getRed() - c.getRed()) + Math.abs(p.getGreen() - c.getGreen()) + Math.abs(p.getBlue() - c.getBlue());
                if (d < 60) {
                    return true;
                }
            }
        }
        return false;
    }
}
