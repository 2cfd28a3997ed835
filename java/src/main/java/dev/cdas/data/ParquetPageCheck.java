package dev.cdas.data;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Optional;
import java.util.PrimitiveIterator;
import org.apache.parquet.bytes.BytesInput;
import org.apache.parquet.column.ColumnDescriptor;
import org.apache.parquet.column.Encoding;
import org.apache.parquet.column.page.DataPage;
import org.apache.parquet.column.page.DataPageV1;
import org.apache.parquet.column.page.DataPageV2;
import org.apache.parquet.column.page.DictionaryPage;
import org.apache.parquet.column.page.PageReadStore;
import org.apache.parquet.column.page.PageReader;

/**
 * Checks every decompressed page of a Parquet file against the sizes the page itself declares
 * before parquet-column decodes it, so that a small file cannot make the decoders allocate without
 * bound. parquet-column sizes its buffers from numbers inside the page: a bit-packed run of the
 * RLE/bit-packing hybrid encoding (levels, dictionary indices, booleans) allocates the values its
 * run header declares, a DELTA_BINARY_PACKED header the values and miniblocks it declares, and a
 * dictionary page one object per entry it declares. Here:
 * <ul>
 *   <li>the values of all pages of one file (data values and dictionary entries together) are at
 *       most {@link #maxValues()} (a 2 KB file can declare millions of identical rows; each
 *       becomes an object);</li>
 *   <li>a bit-packed run holds no more values than its page (rounded up to the group of 8);</li>
 *   <li>a delta header declares no more values than its page, and its buffers (8 bytes a value)
 *       stay within the page limit {@link ParquetDecompressors#maxPageBytes()};</li>
 *   <li>a dictionary holds no more entries than its bytes can (4 bytes for a string's length,
 *       the value's size for numbers);</li>
 *   <li>levels are RLE or BIT_PACKED, as the format defines, and values are in an encoding
 *       checked here (PLAIN, the dictionary encodings, RLE, DELTA_BINARY_PACKED,
 *       DELTA_LENGTH_BYTE_ARRAY, BYTE_STREAM_SPLIT). DELTA_BYTE_ARRAY is refused: its prefix
 *       lengths are allocated before they are checked against the previous value, and checking
 *       them would mean decoding the page twice.</li>
 * </ul>
 * A refusal is a {@link Refused} (unchecked: it leaves parquet's page reader); the readers turn it
 * into a {@link DataFormatException} naming the file and the column ({@link #known}).
 */
final class ParquetPageCheck {
    /** The values a file may hold: 4 Mi by default, system property {@code cdas.parquet.maxValues} (docs/limits.md). */
    static long maxValues() {
        return Long.getLong("cdas.parquet.maxValues", 4L << 20);
    }

    /** A page that fails a check; the message is the problem, without the file. */
    static final class Refused extends RuntimeException {
        private static final long serialVersionUID = 1L;
        private final String column;

        Refused(String column, String problem) {
            super(problem);
            this.column = column;
        }

        String column() {
            return column;
        }
    }

    private final long maxValues = maxValues();
    private final long maxBufferValues = Math.max(1, ParquetDecompressors.maxPageBytes() / 8);
    private long values;

    /** The file's pages, each checked as it is read. One instance per file: the value budget is the file's. */
    PageReadStore wrap(PageReadStore store) {
        return new PageReadStore() {
            @Override
            public PageReader getPageReader(ColumnDescriptor column) {
                return checked(store.getPageReader(column), column);
            }

            @Override
            public long getRowCount() {
                return store.getRowCount();
            }

            @Override
            public Optional<Long> getRowIndexOffset() {
                return store.getRowIndexOffset();
            }

            @Override
            public Optional<PrimitiveIterator.OfLong> getRowIndexes() {
                return store.getRowIndexes();
            }

            @Override
            public void close() {
                store.close();
            }
        };
    }

    /**
     * The readers' message for a failure that a check (or the page size limit) explains, or null
     * when {@code e} is another failure.
     */
    static DataFormatException known(Path file, Throwable e) {
        for (Throwable c = e; c != null; c = c.getCause()) {
            if (c instanceof ParquetDecompressors.PageTooLargeException big) {
                return new DataFormatException(file, null, null, big.getMessage(), e);
            }
            if (c instanceof Refused r) {
                return new DataFormatException(file, null, r.column(), r.getMessage(), e);
            }
        }
        return null;
    }

    private PageReader checked(PageReader pages, ColumnDescriptor column) {
        String name = String.join(".", column.getPath());
        return new PageReader() {
            @Override
            public DictionaryPage readDictionaryPage() {
                DictionaryPage page = pages.readDictionaryPage();
                return page == null ? null : dictionary(page, column, name);
            }

            @Override
            public long getTotalValueCount() {
                return pages.getTotalValueCount();
            }

            @Override
            public DataPage readPage() {
                DataPage page = pages.readPage();
                if (page == null) {
                    return null;
                }
                count(page.getValueCount(), name, "values");
                return page instanceof DataPageV2 v2 ? v2(v2, column, name) : v1((DataPageV1) page, column, name);
            }
        };
    }

    private void count(long n, String column, String what) {
        if (n < 0) {
            throw new Refused(column, "a page declares " + n + " " + what);
        }
        values += n;
        if (values > maxValues) {
            throw new Refused(column, "the file holds more than " + maxValues
                    + " values (system property cdas.parquet.maxValues; docs/limits.md)");
        }
    }

    private DictionaryPage dictionary(DictionaryPage page, ColumnDescriptor column, String name) {
        byte[] bytes = bytes(page.getBytes());
        int entries = page.getDictionarySize();
        count(entries, name, "dictionary entries");
        long each = switch (column.getType()) {
            case INT64, DOUBLE -> 8;
            case INT96 -> 12;
            case FIXED_LEN_BYTE_ARRAY -> Math.max(1, column.getTypeLength());
            default -> 4; // BINARY (a 4-byte length before each string), INT32, FLOAT, BOOLEAN
        };
        if (entries * each > bytes.length) {
            throw new Refused(name, "a dictionary page declares " + entries + " entries in " + bytes.length + " bytes");
        }
        return new DictionaryPage(BytesInput.from(bytes), page.getUncompressedSize(), entries, page.getEncoding());
    }

    private DataPage v1(DataPageV1 page, ColumnDescriptor column, String name) {
        byte[] bytes = bytes(page.getBytes());
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        int n = page.getValueCount();
        levelsV1(b, page.getRlEncoding(), column.getMaxRepetitionLevel(), n, name, "repetition levels");
        levelsV1(b, page.getDlEncoding(), column.getMaxDefinitionLevel(), n, name, "definition levels");
        values(b, page.getValueEncoding(), n, name);
        BytesInput in = BytesInput.from(bytes);
        if (page.getFirstRowIndex().isPresent() && page.getIndexRowCount().isPresent()) {
            return new DataPageV1(in, n, page.getUncompressedSize(), page.getFirstRowIndex().get(),
                    page.getIndexRowCount().get(), page.getStatistics(), page.getRlEncoding(), page.getDlEncoding(),
                    page.getValueEncoding());
        }
        return new DataPageV1(in, n, page.getUncompressedSize(), page.getStatistics(), page.getRlEncoding(),
                page.getDlEncoding(), page.getValueEncoding());
    }

    private DataPage v2(DataPageV2 page, ColumnDescriptor column, String name) {
        byte[] rl = bytes(page.getRepetitionLevels());
        byte[] dl = bytes(page.getDefinitionLevels());
        byte[] data = bytes(page.getData());
        int n = page.getValueCount();
        if (column.getMaxRepetitionLevel() > 0) {
            hybrid(ByteBuffer.wrap(rl), bitWidth(column.getMaxRepetitionLevel()), n, name, "repetition levels");
        }
        if (column.getMaxDefinitionLevel() > 0) {
            hybrid(ByteBuffer.wrap(dl), bitWidth(column.getMaxDefinitionLevel()), n, name, "definition levels");
        }
        values(ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN), page.getDataEncoding(), n, name);
        return new DataPageV2(page.getRowCount(), page.getNullCount(), n, BytesInput.from(rl), BytesInput.from(dl),
                page.getDataEncoding(), BytesInput.from(data), page.getUncompressedSize(), page.getStatistics(),
                page.isCompressed());
    }

    /** A data page v1's levels: RLE with a 4-byte length before the runs, or the old BIT_PACKED. */
    private static void levelsV1(ByteBuffer b, Encoding encoding, int maxLevel, int n, String name, String what) {
        int width = bitWidth(maxLevel);
        switch (encoding) {
            case RLE -> {
                if (width == 0) {
                    return; // parquet reads no bytes for levels that can only be 0
                }
                ByteBuffer runs = lengthPrefixed(b, name, what);
                hybrid(runs, width, n, name, what);
            }
            case BIT_PACKED -> skip(b, ((long) n * width + 7) / 8);
            default -> throw new Refused(name, what + " encoded with " + encoding + " (the format allows RLE and BIT_PACKED)");
        }
    }

    private void values(ByteBuffer b, Encoding encoding, int n, String name) {
        switch (encoding) {
            case PLAIN, BYTE_STREAM_SPLIT -> { }
            case PLAIN_DICTIONARY, RLE_DICTIONARY -> {
                if (b.hasRemaining()) {
                    int width = b.get() & 0xff;
                    if (width <= 32) { // wider: parquet refuses the bit width itself
                        hybrid(b, width, n, name, "dictionary indices");
                    }
                }
            }
            case RLE -> hybrid(lengthPrefixed(b, name, "values"), 1, n, name, "values");
            case DELTA_BINARY_PACKED -> delta(b, n, name, "values");
            case DELTA_LENGTH_BYTE_ARRAY -> delta(b, n, name, "string lengths");
            default -> throw new Refused(name, "values encoded with " + encoding
                    + ", which this reader does not read (plain or dictionary encoding, pyarrow's default, is read)");
        }
    }

    /**
     * Walks RLE/bit-packing hybrid runs until they cover the page's {@code n} values (parquet reads
     * no further): a bit-packed run of more values than the page, rounded up to a group of 8, is refused.
     */
    private static void hybrid(ByteBuffer b, int width, long n, String name, String what) {
        long covered = 0;
        long limit = (n + 7) / 8 * 8;
        while (covered < n && b.hasRemaining()) {
            long header = uvarint(b);
            if (header < 0) {
                return; // cut short: parquet fails reading it
            }
            if ((header & 1) == 0) {
                covered += header >>> 1;
                skip(b, (width + 7) / 8);
            } else {
                long groups = header >>> 1;
                if (groups * 8 > limit) {
                    throw new Refused(name, what + ": a bit-packed run of " + groups * 8 + " values in a page of " + n);
                }
                skip(b, groups * width);
                covered += groups * 8;
            }
        }
    }

    /** A DELTA_BINARY_PACKED header: its value count, miniblock count and buffer against the page. */
    private void delta(ByteBuffer b, int n, String name, String what) {
        long blockSize = uvarint(b);
        long miniBlocks = uvarint(b);
        long total = uvarint(b);
        if (blockSize < 0 || miniBlocks < 0 || total < 0) {
            return; // cut short: parquet fails reading it
        }
        if (blockSize == 0 || miniBlocks == 0 || blockSize % miniBlocks != 0 || (blockSize / miniBlocks) % 8 != 0) {
            throw new Refused(name, what + ": a delta block of " + blockSize + " values in " + miniBlocks
                    + " miniblocks (each miniblock must be a multiple of 8 values)");
        }
        if (total > n) {
            throw new Refused(name, what + ": a delta header declares " + total + " values in a page of " + n);
        }
        long perMiniBlock = blockSize / miniBlocks;
        long buffer = (total + perMiniBlock - 1) / perMiniBlock * perMiniBlock + 1;
        if (buffer > maxBufferValues || miniBlocks > maxBufferValues) {
            throw new Refused(name, what + ": a delta block of " + blockSize + " values in " + miniBlocks
                    + " miniblocks decodes past the page limit of " + ParquetDecompressors.maxPageBytes()
                    + " bytes (system property cdas.parquet.maxPageBytes; docs/limits.md)");
        }
    }

    /**
     * Parquet's unsigned varint as parquet-column reads it (into an int, at most 5 bytes), as a
     * non-negative long; -1 when the bytes end first.
     */
    private static long uvarint(ByteBuffer b) {
        int value = 0;
        for (int shift = 0; shift <= 28; shift += 7) {
            if (!b.hasRemaining()) {
                return -1;
            }
            int x = b.get() & 0xff;
            value |= (x & 0x7f) << shift;
            if ((x & 0x80) == 0) {
                return value & 0xffffffffL;
            }
        }
        return -1; // longer than 5 bytes: parquet refuses it
    }

    private static ByteBuffer lengthPrefixed(ByteBuffer b, String name, String what) {
        if (b.remaining() < 4) {
            return ByteBuffer.allocate(0); // parquet fails reading the length
        }
        long length = b.order(ByteOrder.LITTLE_ENDIAN).getInt() & 0xffffffffL;
        int take = (int) Math.min(length, b.remaining());
        ByteBuffer runs = b.slice(b.position(), take);
        b.position(b.position() + take);
        return runs;
    }

    private static void skip(ByteBuffer b, long n) {
        b.position((int) Math.min(b.limit(), b.position() + n));
    }

    private static int bitWidth(int maxLevel) {
        return 32 - Integer.numberOfLeadingZeros(maxLevel);
    }

    private static byte[] bytes(BytesInput in) {
        try {
            return in.toByteArray();
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
