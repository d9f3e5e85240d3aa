//! Decoding a source image within limits: the header is read first and checked (sides,
//! pixels, decoded bytes from width × height × bytes per pixel), and only then is the
//! image decoded, once its decoded size fits in the process's decode budget.
//!
//! Uploads (the API) and builds share the budget, so neither a burst of uploads nor a build
//! of many large images holds more than `DECODE_BUDGET` of decoded pixels at once.

use image::{DynamicImage, ImageDecoder, ImageFormat, Limits};
use std::io::Cursor;
use std::sync::{Condvar, Mutex};

/// Largest pixel count accepted (width × height): 40 megapixels. Product photos are shown
/// at most 1920 pixels wide; 40 MP takes the 24 and 36 MP of full-frame cameras, 8K video
/// frames (33 MP) and phones' default 12 to 24 MP as they come. Bigger sources (a 45 or
/// 61 MP camera, a phone's 48 MP mode) are to be downscaled before upload.
pub const MAX_PIXELS: u64 = 40_000_000;
/// Largest decoded image, in bytes (width × height × bytes per pixel, known from the
/// header before decoding): 40 MP at 8 bits per channel with alpha. A 16-bit image (twice
/// the bytes per pixel) must be half as large; it is better saved with 8 bits anyway.
pub const MAX_DECODED_BYTES: u64 = MAX_PIXELS * 4;
/// Decoded bytes in flight at once in this process (uploads and builds together): two
/// images of the largest size, or many small ones. Resizing and encoding hold working
/// copies besides the decoded image (up to about three times its size).
pub const DECODE_BUDGET: u64 = 2 * MAX_DECODED_BYTES;
/// Largest side accepted.
const MAX_SIDE: u32 = 30_000;
/// Memory a decoder may allocate: the decoded image plus the decoder's own buffers.
const MAX_ALLOC: u64 = MAX_DECODED_BYTES + 64 * 1024 * 1024;
/// A source decoded within the limits, and its share of the process's decode budget
/// (held until this is dropped: while it is resized and encoded).
pub struct Decoded {
    /// The image, EXIF orientation applied.
    pub image: DynamicImage,
    /// Its format.
    pub format: ImageFormat,
    pub(super) permit: DecodePermit,
}

/// What a source's header says, read without decoding it, checked against the limits:
/// side, pixel count and decoded size (`MAX_DECODED_BYTES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Width in pixels (before orientation).
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes the decoded image takes.
    pub decoded_bytes: u64,
}

/// Opens a JPEG, PNG, WebP or GIF source (`format`, or guessed) and reads its header.
fn open(
    bytes: &[u8],
    format: Option<ImageFormat>,
) -> Result<(ImageFormat, Header, impl ImageDecoder + '_), String> {
    let mut reader = match format {
        Some(f) => image::ImageReader::with_format(Cursor::new(bytes), f),
        None => image::ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| format!("cannot read the file: {e}"))?,
    };
    let format = reader.format().ok_or("the file is not a JPEG, PNG, WebP or GIF image")?;
    if !matches!(
        format,
        ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP | ImageFormat::Gif
    ) {
        return Err("the file is not a JPEG, PNG, WebP or GIF image".into());
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let decoder = reader.into_decoder().map_err(|e| format!("the image is corrupt: {e}"))?;
    let (width, height) = decoder.dimensions();
    let pixels = u64::from(width) * u64::from(height);
    if width == 0 || height == 0 || pixels > MAX_PIXELS {
        return Err(format!(
            "the image is {width}×{height} pixels ({:.1} megapixels), the limit is {} megapixels",
            pixels as f64 / 1e6,
            MAX_PIXELS / 1_000_000
        ));
    }
    let decoded_bytes = decoder.total_bytes();
    if decoded_bytes > MAX_DECODED_BYTES {
        let per_pixel = decoder.color_type().bytes_per_pixel();
        return Err(format!(
            "the image would take {} MB decoded ({width}×{height} at {per_pixel} bytes per \
             pixel), the limit is {} MB: save it with 8 bits per channel or smaller",
            decoded_bytes / 1_000_000,
            MAX_DECODED_BYTES / 1_000_000
        ));
    }
    Ok((format, Header { width, height, decoded_bytes }, decoder))
}

/// Reads a source's header only and checks it against the limits.
pub fn probe(bytes: &[u8], format: Option<ImageFormat>) -> Result<Header, String> {
    open(bytes, format).map(|(_, header, _)| header)
}

/// Decodes a source within the limits (header checked first, nothing allocated for a
/// source over them), waiting for its share of `DECODE_BUDGET`. Blocks: call it from a
/// thread that may wait (a rayon worker, tokio's blocking pool), never an async task.
pub fn decode(bytes: &[u8], format: Option<ImageFormat>) -> Result<Decoded, String> {
    let (format, header, mut decoder) = open(bytes, format)?;
    let permit = DecodePermit::acquire(header.decoded_bytes);
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image =
        DynamicImage::from_decoder(decoder).map_err(|e| format!("the image is corrupt: {e}"))?;
    image.apply_orientation(orientation);
    Ok(Decoded { image, format, permit })
}

/// Decoded bytes currently reserved in this process, and who waits for them. One budget
/// for the whole process on purpose: it bounds memory, which is the process's.
static BUDGET: (Mutex<u64>, Condvar) = (Mutex::new(0), Condvar::new());

std::thread_local! {
    /// Shares of the budget this thread holds.
    static HELD: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// A share of `DECODE_BUDGET`, given back when dropped (on the thread that took it: it is
/// not `Send`).
pub struct DecodePermit(u64, std::marker::PhantomData<*const ()>);

impl DecodePermit {
    /// Waits until `bytes` fit in the budget (a source larger than the whole budget, which
    /// the limits rule out, waits until nothing else is in flight).
    fn acquire(bytes: u64) -> Self {
        let (lock, freed) = &BUDGET;
        let mut used = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // A thread holding a share already never waits for another (a rayon worker may
        // pick up a second image while it waits inside the first): it could wait forever.
        let nested = HELD.with(|held| held.get() > 0);
        while !nested && *used > 0 && used.saturating_add(bytes) > DECODE_BUDGET {
            used = freed.wait(used).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        *used = used.saturating_add(bytes);
        HELD.with(|held| held.set(held.get() + 1));
        Self(bytes, std::marker::PhantomData)
    }
}

impl Drop for DecodePermit {
    fn drop(&mut self) {
        let (lock, freed) = &BUDGET;
        let mut used = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *used = used.saturating_sub(self.0);
        HELD.with(|held| held.set(held.get().saturating_sub(1)));
        freed.notify_all();
    }
}

/// Decoded bytes reserved right now (for tests and metrics).
pub fn decoding_bytes() -> u64 {
    *BUDGET.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PNG whose header says `width` × `height`, 16-bit RGBA, with no pixel data: enough
    /// for a header probe, never decoded.
    fn png_header(width: u32, height: u32) -> Vec<u8> {
        fn crc(bytes: &[u8]) -> u32 {
            let mut c = 0xFFFF_FFFFu32;
            for &b in bytes {
                c ^= u32::from(b);
                for _ in 0..8 {
                    c = if c & 1 == 1 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
                }
            }
            !c
        }
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend_from_slice(&width.to_be_bytes());
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[16, 6, 0, 0, 0]);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend_from_slice(&13u32.to_be_bytes());
        png.extend_from_slice(&ihdr);
        png.extend_from_slice(&crc(&ihdr).to_be_bytes());
        png.extend_from_slice(&0u32.to_be_bytes());
        png.extend_from_slice(b"IDAT");
        png.extend_from_slice(&crc(b"IDAT").to_be_bytes());
        png
    }

    #[test]
    fn the_reported_bomb_is_refused_from_its_header() {
        let err = probe(&png_header(7070, 7070), None).err().unwrap_or_default();
        assert!(err.contains("the limit is 40 megapixels"), "{err}");
        assert!(decode(&png_header(7070, 7070), None).is_err());
    }

    #[test]
    fn decoded_size_counts_bytes_per_pixel() {
        // 25 MP fits the pixel limit, but at 8 bytes a pixel it is 200 MB decoded.
        let err = probe(&png_header(5000, 5000), None).err().unwrap_or_default();
        assert!(err.contains("200 MB decoded") && err.contains("limit is 160 MB"), "{err}");
        let header = probe(&png_header(4000, 2000), None).expect("64 MB decoded is fine");
        assert_eq!(header.decoded_bytes, 4000 * 2000 * 8);
    }

    #[test]
    fn the_budget_bounds_decodes_in_flight() {
        let big = MAX_DECODED_BYTES;
        let first = DecodePermit::acquire(big);
        let second = DecodePermit::acquire(big);
        let waiting = std::thread::spawn(move || {
            let third = DecodePermit::acquire(big);
            drop(third);
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!waiting.is_finished(), "a third large decode waits for the budget");
        assert!(decoding_bytes() <= DECODE_BUDGET);
        drop(first);
        waiting.join().expect("the waiting decode goes on once one is done");
        drop(second);
    }
}
