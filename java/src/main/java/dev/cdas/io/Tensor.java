package dev.cdas.io;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * One tensor of a checkpoint: its name, element type, shape and a read-only view of its bytes
 * (little-endian, row-major). For a memory-mapped file the segment is a slice of the mapping:
 * valid while the owning {@link Safetensors} (its arena) is open, and never copied.
 *
 * @param name  the tensor's name in its file
 * @param dtype its element type
 * @param shape its dimensions ({@code []} for a scalar); copied in and out
 * @param data  its bytes, little-endian, row-major, {@code elementCount x dtype.byteSize()} long
 */
public record Tensor(String name, StorageType dtype, long[] shape, MemorySegment data) {

    static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Copies {@code shape}, so later changes to the caller's array do not reach the tensor. */
    public Tensor {
        shape = shape.clone();
    }

    /**
     * The dimensions, outermost first.
     *
     * @return a copy of the shape
     */
    @Override
    public long[] shape() {
        return shape.clone();
    }

    /**
     * The number of dimensions.
     *
     * @return 0 for a scalar, 2 for a matrix, ...
     */
    public int rank() {
        return shape.length;
    }

    /**
     * One dimension.
     *
     * @param i the dimension's index, 0 for the outermost
     * @return its size
     * @throws ArrayIndexOutOfBoundsException when {@code i} is not below {@link #rank()}
     */
    public long dim(int i) {
        return shape[i];
    }

    /**
     * Number of elements (1 for a scalar of shape []).
     *
     * @return the product of the dimensions
     * @throws ArithmeticException when it overflows a long
     */
    public long elementCount() {
        return elementCount(shape);
    }

    /**
     * The size of the data.
     *
     * @return the number of bytes of {@link #data()}
     */
    public long byteSize() {
        return data.byteSize();
    }

    /**
     * The shape as text, for messages.
     *
     * @return for example {@code [2, 3]}
     */
    public String shapeString() {
        return Arrays.toString(shape);
    }

    static long elementCount(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    /**
     * Element i as a float, converting F16/BF16/F64 (a reference path for tests and tools, not for hot loops).
     *
     * @param i the element's index in row-major order
     * @return its value as a float (F64 rounded)
     * @throws UnsupportedOperationException when the type is not F32, F64, BF16 or F16
     * @throws IndexOutOfBoundsException     when {@code i} is outside the data
     */
    public float getFloat(long i) {
        return switch (dtype) {
            case F32 -> data.getAtIndex(F32, i);
            case F64 -> (float) data.getAtIndex(F64, i);
            case BF16 -> Float.intBitsToFloat((data.getAtIndex(I16, i) & 0xffff) << 16);
            case F16 -> Float.float16ToFloat(data.getAtIndex(I16, i));
            default -> throw new UnsupportedOperationException(name + ": dtype " + dtype + " is not floating point");
        };
    }

    /**
     * All elements as floats (copies; F32, F64, F16, BF16).
     *
     * @return a new array of {@link #elementCount()} floats, row-major
     * @throws UnsupportedOperationException when the type is not floating point (F8 types included) or
     *         the tensor has too many elements for a Java array
     */
    public float[] toFloatArray() {
        long n = elementCount();
        if (n > Integer.MAX_VALUE - 8) {
            throw new UnsupportedOperationException(name + ": " + n + " elements do not fit a Java array");
        }
        float[] out = new float[(int) n];
        if (dtype == StorageType.F32) {
            MemorySegment.copy(data, F32, 0, out, 0, out.length);
            return out;
        }
        for (int i = 0; i < out.length; i++) {
            out[i] = getFloat(i);
        }
        return out;
    }

    /**
     * All elements as longs (copies; I64, I32, I16, I8, U8, U16, U32, BOOL).
     *
     * @return a new array of {@link #elementCount()} longs, row-major (U64 values above
     *         {@link Long#MAX_VALUE} wrap)
     * @throws UnsupportedOperationException when the type is not an integer or boolean type, or the
     *         tensor has too many elements for a Java array
     */
    public long[] toLongArray() {
        long n = elementCount();
        if (n > Integer.MAX_VALUE - 8) {
            throw new UnsupportedOperationException(name + ": " + n + " elements do not fit a Java array");
        }
        long[] out = new long[(int) n];
        for (int i = 0; i < out.length; i++) {
            out[i] = switch (dtype) {
                case I64, U64 -> data.getAtIndex(I64, i);
                case I32 -> data.getAtIndex(I32, i);
                case U32 -> data.getAtIndex(I32, i) & 0xffffffffL;
                case I16 -> data.getAtIndex(I16, i);
                case U16 -> data.getAtIndex(I16, i) & 0xffff;
                case I8 -> data.get(ValueLayout.JAVA_BYTE, i);
                case U8, BOOL -> data.get(ValueLayout.JAVA_BYTE, i) & 0xff;
                default -> throw new UnsupportedOperationException(name + ": dtype " + dtype + " is not an integer type");
            };
        }
        return out;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Tensor t && t.name.equals(name) && t.dtype == dtype && Arrays.equals(t.shape, shape)
                && t.data.equals(data);
    }

    @Override
    public int hashCode() {
        return name.hashCode() * 31 + Arrays.hashCode(shape);
    }

    @Override
    public String toString() {
        return name + " " + dtype + " " + shapeString();
    }
}
