package dev.cdas.train;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.geom.AffineTransform;
import java.awt.geom.Path2D;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import javax.imageio.ImageIO;

/**
 * A line plot of one or two series over the same x values, drawn with Java 2D and encoded as PNG:
 * title, axes with round tick values, grid, legend. Written for the loss curves, where it replaced a
 * charting library that cost about a second per process to start and a tenth of a second per plot
 * (a plot is made for every trained concept).
 */
final class LossPlot {
    static final int WIDTH = 900;
    static final int HEIGHT = 500;
    static final int LEFT = 80;
    static final int RIGHT = 24;
    static final int TOP = 44;
    static final int BOTTOM = 56;
    static final Color BACKGROUND = Color.WHITE;
    static final Color[] SERIES_COLORS = {new Color(0x1f, 0x77, 0xb4), new Color(0xff, 0x7f, 0x0e)};

    /** A named series of y values, one per x. */
    record Series(String name, double[] y) {}

    private LossPlot() {
    }

    /**
     * The plot as PNG bytes.
     *
     * @param title  the title above the plot
     * @param xLabel the x axis' label
     * @param yLabel the y axis' label
     * @param x      the x values, increasing
     * @param series at most two series, each as long as {@code x}; non-finite values leave a gap
     */
    static byte[] png(String title, String xLabel, String yLabel, double[] x, List<Series> series) throws IOException {
        BufferedImage image = render(title, xLabel, yLabel, x, series);
        ByteArrayOutputStream out = new ByteArrayOutputStream(32 << 10);
        if (!ImageIO.write(image, "png", out)) {
            throw new IOException("no PNG writer in this Java runtime");
        }
        return out.toByteArray();
    }

    static BufferedImage render(String title, String xLabel, String yLabel, double[] x, List<Series> series) {
        if (series.isEmpty() || series.size() > SERIES_COLORS.length) {
            throw new IllegalArgumentException("1 or 2 series, got " + series.size());
        }
        for (Series s : series) {
            if (s.y().length != x.length) {
                throw new IllegalArgumentException("series " + s.name() + " has " + s.y().length + " values for " + x.length + " x values");
            }
        }
        double[] xr = range(x);
        double[] yr = range(series.stream().map(Series::y).toArray(double[][]::new));
        double[] xTicks = ticks(xr[0], xr[1], 8);
        double[] yTicks = ticks(yr[0], yr[1], 6);
        // The axes span the ticks' range, so that the outermost grid lines are the frame.
        double x0 = Math.min(xr[0], xTicks[0]);
        double x1 = Math.max(xr[1], xTicks[xTicks.length - 1]);
        double y0 = Math.min(yr[0], yTicks[0]);
        double y1 = Math.max(yr[1], yTicks[yTicks.length - 1]);
        int plotW = WIDTH - LEFT - RIGHT;
        int plotH = HEIGHT - TOP - BOTTOM;

        BufferedImage image = new BufferedImage(WIDTH, HEIGHT, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = image.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
            g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
            g.setColor(BACKGROUND);
            g.fillRect(0, 0, WIDTH, HEIGHT);
            Font small = new Font(Font.SANS_SERIF, Font.PLAIN, 12);
            g.setFont(small);
            FontMetrics fm = g.getFontMetrics();

            // Grid and tick labels.
            g.setStroke(new BasicStroke(1f));
            for (double t : xTicks) {
                int px = (int) Math.round(px(t, x0, x1, plotW));
                g.setColor(new Color(0xe4, 0xe4, 0xe4));
                g.drawLine(px, TOP, px, TOP + plotH);
                String label = format(t, xTicks);
                g.setColor(Color.DARK_GRAY);
                g.drawString(label, px - fm.stringWidth(label) / 2, TOP + plotH + fm.getAscent() + 6);
            }
            for (double t : yTicks) {
                int py = (int) Math.round(py(t, y0, y1, plotH));
                g.setColor(new Color(0xe4, 0xe4, 0xe4));
                g.drawLine(LEFT, py, LEFT + plotW, py);
                String label = format(t, yTicks);
                g.setColor(Color.DARK_GRAY);
                g.drawString(label, LEFT - 8 - fm.stringWidth(label), py + fm.getAscent() / 2 - 1);
            }
            g.setColor(Color.GRAY);
            g.drawRect(LEFT, TOP, plotW, plotH);

            // Series, clipped to the plot area.
            g.setClip(LEFT, TOP, plotW + 1, plotH + 1);
            g.setStroke(new BasicStroke(1.6f, BasicStroke.CAP_ROUND, BasicStroke.JOIN_ROUND));
            for (int s = 0; s < series.size(); s++) {
                double[] y = series.get(s).y();
                Path2D.Double path = new Path2D.Double();
                boolean open = false;
                for (int i = 0; i < x.length; i++) {
                    if (!Double.isFinite(x[i]) || !Double.isFinite(y[i])) {
                        open = false;
                        continue;
                    }
                    double qx = px(x[i], x0, x1, plotW);
                    double qy = py(y[i], y0, y1, plotH);
                    if (open) {
                        path.lineTo(qx, qy);
                    } else {
                        path.moveTo(qx, qy);
                        path.lineTo(qx, qy);  // a lone point still shows
                        open = true;
                    }
                }
                g.setColor(SERIES_COLORS[s]);
                g.draw(path);
            }
            g.setClip(null);

            // Legend, top right inside the plot.
            int lineH = fm.getHeight();
            int legendW = 0;
            for (Series s : series) {
                legendW = Math.max(legendW, fm.stringWidth(s.name()));
            }
            legendW += 44;
            int legendH = lineH * series.size() + 10;
            int lx = LEFT + plotW - legendW - 10;
            int ly = TOP + 10;
            g.setColor(new Color(255, 255, 255, 230));
            g.fillRect(lx, ly, legendW, legendH);
            g.setColor(Color.LIGHT_GRAY);
            g.drawRect(lx, ly, legendW, legendH);
            for (int s = 0; s < series.size(); s++) {
                int cy = ly + 5 + lineH * s + lineH / 2;
                g.setColor(SERIES_COLORS[s]);
                g.setStroke(new BasicStroke(2.5f));
                g.drawLine(lx + 8, cy, lx + 32, cy);
                g.setColor(Color.BLACK);
                g.drawString(series.get(s).name(), lx + 38, cy + fm.getAscent() / 2 - 1);
            }

            // Title and axis labels.
            g.setColor(Color.BLACK);
            g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 15));
            FontMetrics tm = g.getFontMetrics();
            g.drawString(title, (WIDTH - tm.stringWidth(title)) / 2, TOP - 14);
            g.setFont(small);
            g.drawString(xLabel, LEFT + (plotW - fm.stringWidth(xLabel)) / 2, HEIGHT - 12);
            AffineTransform saved = g.getTransform();
            g.rotate(-Math.PI / 2);
            g.drawString(yLabel, -(TOP + (plotH + fm.stringWidth(yLabel)) / 2), 20);
            g.setTransform(saved);
        } finally {
            g.dispose();
        }
        return image;
    }

    /** The x pixel of value v. */
    static double px(double v, double lo, double hi, int plotW) {
        return LEFT + (v - lo) / (hi - lo) * plotW;
    }

    /** The y pixel of value v (up is larger). */
    static double py(double v, double lo, double hi, int plotH) {
        return TOP + plotH - (v - lo) / (hi - lo) * plotH;
    }

    /** [min, max] of the finite values, widened to a non-empty interval. */
    static double[] range(double[]... arrays) {
        double lo = Double.POSITIVE_INFINITY;
        double hi = Double.NEGATIVE_INFINITY;
        for (double[] a : arrays) {
            for (double v : a) {
                if (Double.isFinite(v)) {
                    lo = Math.min(lo, v);
                    hi = Math.max(hi, v);
                }
            }
        }
        if (lo > hi) {
            return new double[] {0, 1};
        }
        if (hi - lo <= Math.abs(hi) * 1e-12 || hi == lo) {
            double pad = lo == 0 ? 1 : Math.abs(lo) * 0.1;
            return new double[] {lo - pad, hi + pad};
        }
        return new double[] {lo, hi};
    }

    /**
     * Round tick values covering [lo, hi]: multiples of 1, 2 or 5 times a power of ten, at most
     * {@code max + 1} of them, the first at or below lo and the last at or above hi.
     */
    static double[] ticks(double lo, double hi, int max) {
        double span = hi - lo;
        double raw = span / max;
        double mag = Math.pow(10, Math.floor(Math.log10(raw)));
        double step;
        // 1, 2, 5 times mag, then times 10 mag, ...: the smallest whose ticks number at most max + 1.
        for (int k = 0; ; k++) {
            step = new double[] {1, 2, 5}[k % 3] * mag * Math.pow(10, k / 3);
            if (Math.ceil(hi / step) - Math.floor(lo / step) <= max) {
                break;
            }
        }
        long first = (long) Math.floor(lo / step);
        long last = (long) Math.ceil(hi / step);
        List<Double> out = new ArrayList<>();
        for (long k = first; k <= last; k++) {
            out.add(k * step);
        }
        return out.stream().mapToDouble(Double::doubleValue).toArray();
    }

    /** A tick's label with as many decimals as the ticks' spacing needs. */
    static String format(double v, double[] ticks) {
        double step = ticks.length > 1 ? ticks[1] - ticks[0] : 1;
        int decimals = Math.max(0, (int) Math.ceil(-Math.log10(step) - 1e-9));
        if (Math.abs(v) < step * 1e-6) {
            v = 0;
        }
        return String.format(Locale.ROOT, "%." + Math.min(decimals, 10) + "f", v);
    }
}
