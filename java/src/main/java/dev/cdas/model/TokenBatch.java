package dev.cdas.model;

import dev.cdas.InvalidArgumentException;
import java.util.Arrays;

/**
 * Token sequences [batch x seqLen] with a mask (1 = real token). The real tokens of a row are
 * one contiguous run; positions count from its first real token, so padding changes nothing.
 *
 * @param batch  the number of rows B
 * @param seqLen the length T of every row, padding included
 * @param tokens the token ids, B x T row-major
 * @param mask   1 for a real token and 0 for padding, B x T; null when every token is real
 */
public record TokenBatch(int batch, int seqLen, int[] tokens, byte[] mask) {
    /**
     * Checks the sizes.
     *
     * @throws InvalidArgumentException when B or T is not positive, or tokens or mask do not hold B x T entries
     */
    public TokenBatch {
        if (batch <= 0 || seqLen <= 0) {
            throw new InvalidArgumentException("a batch needs batch > 0 and seqLen > 0, got " + batch + " x " + seqLen);
        }
        if (tokens == null || tokens.length != (long) batch * seqLen) {
            throw new InvalidArgumentException("tokens must hold batch x seqLen = " + (long) batch * seqLen + " ids, got "
                    + (tokens == null ? "null" : tokens.length));
        }
        if (mask != null && mask.length != tokens.length) {
            throw new InvalidArgumentException("mask must hold " + tokens.length + " entries, got " + mask.length);
        }
    }

    /**
     * One unpadded sequence.
     *
     * @param tokens the token ids
     * @return a batch of one row and no padding
     * @throws InvalidArgumentException when {@code tokens} is empty
     */
    public static TokenBatch single(int... tokens) {
        return new TokenBatch(1, tokens.length, tokens.clone(), null);
    }

    /**
     * Rows left-padded to the longest with token {@code pad} (what generation needs).
     *
     * @param pad  the id the padding holds (masked out, so any valid id)
     * @param rows the rows, none empty
     * @return a batch of {@code rows.length} rows as long as the longest
     * @throws InvalidArgumentException when there is no row or a row is empty
     */
    public static TokenBatch leftPadded(int pad, int[]... rows) {
        int width = 0;
        for (int[] r : rows) {
            if (r.length == 0) {
                throw new InvalidArgumentException("a row of a batch is empty");
            }
            width = Math.max(width, r.length);
        }
        int[] tokens = new int[rows.length * width];
        byte[] mask = new byte[tokens.length];
        Arrays.fill(tokens, pad);
        for (int b = 0; b < rows.length; b++) {
            int offset = b * width + width - rows[b].length;
            System.arraycopy(rows[b], 0, tokens, offset, rows[b].length);
            Arrays.fill(mask, offset, offset + rows[b].length, (byte) 1);
        }
        return new TokenBatch(rows.length, width, tokens, mask);
    }

    /**
     * Column of row b's first real token.
     *
     * @param b the row, 0 to B - 1
     * @return the column, or T when the row has no real token
     */
    public int firstReal(int b) {
        if (mask == null) {
            return 0;
        }
        for (int t = 0; t < seqLen; t++) {
            if (mask[b * seqLen + t] != 0) {
                return t;
            }
        }
        return seqLen;
    }

    /**
     * Real tokens of row b.
     *
     * @param b the row, 0 to B - 1
     * @return the number of mask entries that are not 0 (T without a mask)
     */
    public int length(int b) {
        if (mask == null) {
            return seqLen;
        }
        int n = 0;
        for (int t = 0; t < seqLen; t++) {
            n += mask[b * seqLen + t] != 0 ? 1 : 0;
        }
        return n;
    }
}
