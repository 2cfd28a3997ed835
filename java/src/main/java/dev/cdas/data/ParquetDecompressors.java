package dev.cdas.data;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.util.zip.GZIPInputStream;
import org.apache.parquet.bytes.BytesInput;
import org.apache.parquet.compression.CompressionCodecFactory;
import org.apache.parquet.hadoop.metadata.CompressionCodecName;

/**
 * Page decompression for {@link ParquetPairReader} without Hadoop. parquet-hadoop's own codec
 * factory builds a Hadoop {@code Configuration} (XML parsing, Guava, commons-logging: the whole
 * Hadoop runtime) just to look codecs up; this factory uses aircompressor (a parquet dependency,
 * pure Java) for snappy (pyarrow's default), zstd and raw LZ4, and java.util.zip for gzip, so the
 * jar carries no snappy-java or zstd-jni native libraries. Other codecs (Brotli, LZO,
 * Hadoop-framed LZ4) are refused by name.
 */
final class ParquetDecompressors implements CompressionCodecFactory {
    /**
     * The largest page (decompressed) the pair reader accepts: 64 MiB by default, system property
     * {@code cdas.parquet.maxPageBytes} (docs/limits.md). Checked against the page header before
     * anything is decompressed, so a small file of highly compressed strings cannot fill the memory.
     */
    static long maxPageBytes() {
        return Long.getLong("cdas.parquet.maxPageBytes", 64L << 20);
    }

    @Override
    public BytesInputDecompressor getDecompressor(CompressionCodecName codec) {
        return new Decompressor(codec);
    }

    @Override
    public BytesInputCompressor getCompressor(CompressionCodecName codec) {
        throw new UnsupportedOperationException("the pair reader only reads Parquet");
    }

    @Override
    public void release() {}

    /** A page over {@link #maxPageBytes()}: reported as it is, not as corrupt data. */
    static final class PageTooLargeException extends IOException {
        private static final long serialVersionUID = 1L;

        PageTooLargeException(String message) {
            super(message);
        }
    }

    private record Decompressor(CompressionCodecName codec) implements BytesInputDecompressor {
        @Override
        public BytesInput decompress(BytesInput bytes, int uncompressedSize) throws IOException {
            return BytesInput.from(decompress(bytes.toByteArray(), uncompressedSize));
        }

        @Override
        public void decompress(ByteBuffer input, int compressedSize, ByteBuffer output, int uncompressedSize)
                throws IOException {
            byte[] in = new byte[compressedSize];
            input.duplicate().get(in);
            output.put(decompress(in, uncompressedSize));
        }

        private byte[] decompress(byte[] in, int uncompressedSize) throws IOException {
            long max = maxPageBytes();
            if (uncompressedSize < 0 || uncompressedSize > max) {
                throw new PageTooLargeException("a page decompresses to " + uncompressedSize
                        + " bytes, more than the limit of " + max + " (system property cdas.parquet.maxPageBytes; docs/limits.md)");
            }
            byte[] out = switch (codec) {
                case UNCOMPRESSED -> in;
                case SNAPPY -> airlift(new io.airlift.compress.snappy.SnappyDecompressor(), in, uncompressedSize);
                case ZSTD -> airlift(new io.airlift.compress.zstd.ZstdDecompressor(), in, uncompressedSize);
                case GZIP -> {
                    try (InputStream gz = new GZIPInputStream(new ByteArrayInputStream(in))) {
                        yield gz.readNBytes(uncompressedSize);
                    }
                }
                case LZ4_RAW -> airlift(new io.airlift.compress.lz4.Lz4Decompressor(), in, uncompressedSize);
                default -> throw new IOException("Parquet pages compressed with " + codec
                        + " are not supported (snappy, zstd, gzip, lz4_raw and uncompressed are)");
            };
            if (out.length != uncompressedSize) {
                throw new IOException(codec + " page decompressed to " + out.length + " bytes, header says " + uncompressedSize);
            }
            return out;
        }

        private static byte[] airlift(io.airlift.compress.Decompressor d, byte[] in, int uncompressedSize)
                throws IOException {
            byte[] out = new byte[uncompressedSize];
            try {
                int n = d.decompress(in, 0, in.length, out, 0, out.length);
                return n == out.length ? out : java.util.Arrays.copyOf(out, n);
            } catch (io.airlift.compress.MalformedInputException e) {
                throw new IOException("corrupt compressed page: " + e.getMessage(), e);
            }
        }

        @Override
        public void release() {}
    }
}
