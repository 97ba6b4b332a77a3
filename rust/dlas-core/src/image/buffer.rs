//! An owned, tightly packed RGB8 image and a borrowed rectangular view into one.

/// An owned RGB image, 3 bytes per pixel, rows packed without padding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rgb8 {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

/// A borrowed RGB8 rectangle: `stride` is the distance between rows, in bytes.
#[derive(Clone, Copy, Debug)]
pub struct Rgb8View<'a> {
    pub data: &'a [u8],
    pub width: usize,
    pub height: usize,
    pub stride: usize,
}

impl Rgb8 {
    /// Wraps a packed buffer; panics if its length is not `width * height * 3`.
    pub fn new(width: usize, height: usize, data: Vec<u8>) -> Self {
        assert_eq!(data.len(), width * height * 3, "RGB8 buffer size mismatch");
        Rgb8 {
            width,
            height,
            data,
        }
    }

    /// The whole image as a view.
    pub fn view(&self) -> Rgb8View<'_> {
        Rgb8View {
            data: &self.data,
            width: self.width,
            height: self.height,
            stride: self.width * 3,
        }
    }

    /// A view of the rectangle at (`row`, `col`) of `height` x `width` pixels.
    pub fn crop(&self, row: usize, col: usize, height: usize, width: usize) -> Rgb8View<'_> {
        self.view().crop(row, col, height, width)
    }
}

impl<'a> Rgb8View<'a> {
    /// A sub-rectangle of this view; panics when it does not fit.
    pub fn crop(&self, row: usize, col: usize, height: usize, width: usize) -> Rgb8View<'a> {
        assert!(
            row + height <= self.height && col + width <= self.width,
            "crop out of bounds"
        );
        let start = row * self.stride + col * 3;
        let end = if height == 0 {
            start
        } else {
            start + (height - 1) * self.stride + width * 3
        };
        Rgb8View {
            data: &self.data[start..end],
            width,
            height,
            stride: self.stride,
        }
    }

    /// Row `y` of the view (exactly `width * 3` bytes).
    #[inline]
    pub fn row(&self, y: usize) -> &'a [u8] {
        let s = y * self.stride;
        &self.data[s..s + self.width * 3]
    }

    /// Copies the view into an owned, packed image.
    pub fn to_owned(&self) -> Rgb8 {
        let mut data = Vec::with_capacity(self.width * self.height * 3);
        for y in 0..self.height {
            data.extend_from_slice(self.row(y));
        }
        Rgb8::new(self.width, self.height, data)
    }

    /// True when rows follow each other without padding.
    pub fn is_packed(&self) -> bool {
        self.stride == self.width * 3 || self.height <= 1
    }
}
