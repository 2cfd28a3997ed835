package dev.cdas.train;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class GradientCheckTest {
    @Test
    void acceptsACorrectGradientAndCatchesAWrongOne() {
        HiddenDirectionObjective obj = new HiddenDirectionObjective(12, 1, 6, 1.0, 4);
        Batch batch = Batches.epoch(HiddenDirectionObjective.pairs(6), 6, 0, new Rng(1)).getFirst();
        float[] w = Directions.randomUnit(1, 12, new Rng(2));
        for (GradientCheck.Probe p : GradientCheck.directional(obj, w, batch, 5, 1e-2, 3)) {
            assertTrue(p.relativeError() < 1e-2, p.toString());
        }
        Objective wrong = new Objective() {
            public int dimension() {
                return 12;
            }

            public Result lossAndGradient(float[] x, Batch b) {
                Result r = obj.lossAndGradient(x, b);
                float[] g = r.gradient();
                for (int i = 0; i < g.length; i++) {
                    g[i] *= 0.5f;
                }
                return new Result(r.loss(), g, r.tokens());
            }
        };
        List<GradientCheck.Probe> probes = List.of(GradientCheck.directional(wrong, w, batch, 5, 1e-2, 3));
        assertTrue(probes.stream().anyMatch(p -> p.relativeError() > 0.3), probes.toString());
    }
}
