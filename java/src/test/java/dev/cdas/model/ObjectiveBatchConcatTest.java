package dev.cdas.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;

import java.util.List;
import org.junit.jupiter.api.Test;

/** {@link ObjectiveBatch#concat}: the packed minibatch of concept packing, re-padded, states moved with their rows. */
class ObjectiveBatchConcatTest {
    static final int D = 2;

    /** Base h_L of row b at real position t: (100 b + t + offset, -(100 b + t + offset)). */
    static ObjectiveBatch part(int offset, int[]... baseRows) {
        TokenBatch base = TokenBatch.leftPadded(0, baseRows);
        int n = baseRows.length;
        float[] hidden = new float[n * base.seqLen() * D];
        for (int b = 0; b < n; b++) {
            for (int t = 0; t < base.length(b); t++) {
                int at = (b * base.seqLen() + base.firstReal(b) + t) * D;
                hidden[at] = 100 * b + t + offset;
                hidden[at + 1] = -hidden[at];
            }
        }
        int[] ones = new int[n];
        java.util.Arrays.fill(ones, 1);
        int[] count = new int[n];
        java.util.Arrays.fill(count, 2);
        float[] source = new float[n * D];
        float[] teacher = new float[n * 2 * D];
        for (int i = 0; i < source.length; i++) {
            source[i] = offset + i;
        }
        for (int i = 0; i < teacher.length; i++) {
            teacher[i] = -offset - i;
        }
        return new ObjectiveBatch(base, base, base, ones, ones, ones, ones, count, hidden, source, teacher);
    }

    @Test
    void rowsArePaddedToTheLongestAndStatesFollowTheirRows() {
        ObjectiveBatch a = part(0, new int[] {5, 6, 7}, new int[] {8});
        ObjectiveBatch b = part(1000, new int[] {9, 9, 9, 9, 9});
        ObjectiveBatch all = ObjectiveBatch.concat(List.of(a, b), 3, D);
        assertEquals(3, all.base().batch());
        assertEquals(5, all.base().seqLen());
        assertArrayEquals(new int[] {3, 3, 5, 6, 7, 3, 3, 3, 3, 8, 9, 9, 9, 9, 9}, all.base().tokens());
        assertArrayEquals(new int[] {2, 2, 2}, all.compareCount());
        // row 0's h_L moved right by 2 columns, row 1's by 4, row 2 (from b) in place
        float[] h = all.baseHidden();
        assertEquals(0f, h[2 * D]);
        assertEquals(2f, h[4 * D]);
        assertEquals(-2f, h[4 * D + 1]);
        assertEquals(100f, h[(5 + 4) * D]);
        assertEquals(1004f, h[(10 + 4) * D]);
        assertEquals(0f, h[0], "padding stays zero");
        assertArrayEquals(new float[] {0, 1, 2, 3, 1000, 1001}, all.sourceHidden());
        assertEquals(a.teacherHidden().length + b.teacherHidden().length, all.teacherHidden().length);
        assertEquals(-1000f, all.teacherHidden()[a.teacherHidden().length]);
        assertSame(a, ObjectiveBatch.concat(List.of(a), 3, D), "one part is itself");
        assertNull(ObjectiveBatch.concat(List.of(a, b.withStates(null, null, null)), 3, D).baseHidden(),
                "a state only some parts give is left out");
    }
}
