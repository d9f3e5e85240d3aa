//! Decompression bombs as valid PNG files, for the tests of the image limits: the end-to-end
//! tests here (`tests/common/`), the engine's unit tests and the API's tests all include
//! this one file (`#[path]`), so every bomb is made the same way. It depends on nothing but
//! `std` for that reason.
//!
//! Every chunk carries its correct CRC-32 and the zlib stream its correct Adler-32: a
//! decoder accepts the file, so an image limit (never a checksum error) is what refuses it.

/// CRC-32 (ISO-HDLC, as PNG uses) of the concatenation of `parts`.
pub fn crc32(parts: &[&[u8]]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in parts.iter().flat_map(|p| p.iter()) {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 == 1 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}

/// Deflate's bit order: values least significant bit first, Huffman codes most first.
struct Bits {
    out: Vec<u8>,
    acc: u64,
    len: u32,
}

impl Bits {
    fn put(&mut self, value: u32, n: u32) {
        self.acc |= u64::from(value) << self.len;
        self.len += n;
        while self.len >= 8 {
            self.out.push(self.acc.to_le_bytes()[0]);
            self.acc >>= 8;
            self.len -= 8;
        }
    }

    fn code(&mut self, code: u32, n: u32) {
        self.put(code.reverse_bits() >> (32 - n), n);
    }
}

/// A PNG chunk: length, type, data and the CRC-32 of type and data.
pub fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let len = u32::try_from(data.len()).expect("a chunk under 4 GiB");
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32(&[kind, data]).to_be_bytes());
    out
}

/// A valid PNG of `width` × `height` black 16-bit RGBA pixels (8 bytes each). Its zlib
/// stream is one fixed-Huffman block of back-references, about 13 bits per 258 decoded
/// bytes: the security review's 7070 × 7070 (400 MB decoded) is a 2.5 MB file.
pub fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    // Each row: a filter byte (0, none) and 8 zero bytes a pixel.
    let raw = u64::from(height) * (1 + u64::from(width) * 8);
    let mut bits = Bits { out: vec![0x78, 0x01], acc: 0, len: 0 };
    bits.put(1, 1); // the last block
    bits.put(1, 2); // fixed Huffman codes
    bits.code(0x30, 8); // literal 0
    let matches = (raw - 1) / 258;
    for _ in 0..matches {
        bits.code(0xC5, 8); // length 258 (symbol 285)
        bits.code(0, 5); // distance 1
    }
    for _ in 0..(raw - 1 - matches * 258) {
        bits.code(0x30, 8); // literal 0
    }
    bits.code(0, 7); // end of block
    if bits.len > 0 {
        bits.put(0, 8 - bits.len);
    }
    // Adler-32 of `raw` zero bytes: a stays 1, b adds 1 per byte.
    let b = u32::try_from(raw % 65_521).expect("below 65521");
    let mut zlib = bits.out;
    zlib.extend_from_slice(&((b << 16) | 1).to_be_bytes());
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[16, 6, 0, 0, 0]); // 16-bit, RGBA, deflate, no filter, no interlace
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(b"IDAT", &zlib));
    png.extend(chunk(b"IEND", &[]));
    png
}
