/**
 * Model files on disk: the safetensors format, read by memory mapping ({@link dev.cdas.io.Safetensors},
 * sharded checkpoints in {@link dev.cdas.io.Checkpoint}) and written atomically
 * ({@link dev.cdas.io.SafetensorsWriter}). Every format problem is a
 * {@link dev.cdas.io.ModelFormatException} (an {@link java.io.IOException}) whose message starts with
 * the file and names the field or tensor.
 *
 * <p>Layout of a safetensors file: {@code u64 N} (little-endian), N bytes of UTF-8 JSON
 * ({@code {"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [begin, end)}}},
 * offsets relative to the data section), then the data section. The reader accepts gaps between
 * tensors (as padding) but not overlaps; the writer packs tensors in insertion order and pads the
 * header with spaces to a multiple of 8.
 */
package dev.cdas.io;
