using RenderFarm.Diffusion.Imaging;

namespace RenderFarm.Diffusion.Tests.Watermarking;

/// <summary>
/// The reference library's dwtDct decoder (invisible-watermark, <c>WatermarkDecoder('bytes', L).decode(img, 'dwtDct')</c>)
/// restated step by step, independently of the engine's code, so tests can ask "would their decoder read this?"
/// without Python. It differs from the engine where the reference does: U comes from OpenCV's 8-bit integer
/// conversion (Y rounded first, then U, Q14 fixed point), not floating point. That this matches OpenCV exactly was
/// checked with the library's own OpenCV (<c>bench/watermark/reference_check.py yuv</c>, docs/watermark.md).
/// </summary>
internal static class ReferenceDecoder
{
    public static byte[] Decode(RgbImage image, int bytes)
    {
        int width = image.Width, height = image.Height;
        var u = new int[width * height];
        for (var i = 0; i < u.Length; i++)
        {
            int r = image.Pixels[3 * i], g = image.Pixels[3 * i + 1], b = image.Pixels[3 * i + 2];
            var y = (r * 4899 + g * 9617 + b * 1868 + (1 << 13)) >> 14;
            u[i] = Math.Clamp(((b - y) * 8061 + (128 << 14) + (1 << 13)) >> 14, 0, 255);
        }

        // pywt.dwt2(U[:h//4*4, :w//4*4], 'haar')'s cA: the filter along axis 0 (down), then axis 1, tap 1/sqrt 2,
        // in floating point as numpy evaluates it (votes on the threshold 36k + 18 depend on its last bit).
        const double c = 0.7071067811865476;
        int caHeight = height / 4 * 4 / 2, caWidth = width / 4 * 4 / 2;
        var length = bytes * 8;
        var ones = new double[length];
        var counts = new int[length];
        var num = 0;
        for (var i = 0; i < caHeight / 4; i++)
        {
            for (var j = 0; j < caWidth / 4; j++, num++)
            {
                var flat = new double[16];
                for (var k = 0; k < 16; k++)
                {
                    int cy = i * 4 + k / 4, cx = j * 4 + k % 4;
                    double a = u[2 * cy * width + 2 * cx], b = u[2 * cy * width + 2 * cx + 1];
                    double d = u[(2 * cy + 1) * width + 2 * cx], e = u[(2 * cy + 1) * width + 2 * cx + 1];
                    flat[k] = (a * c + d * c) * c + (b * c + e * c) * c;
                }

                // np.argmax(abs(block.flatten()[1:])) + 1: the first maximum.
                var pos = 1;
                for (var k = 2; k < 16; k++)
                {
                    if (Math.Abs(flat[k]) > Math.Abs(flat[pos]))
                    {
                        pos = k;
                    }
                }

                ones[num % length] += Math.Abs(flat[pos]) % 36 > 0.5 * 36 ? 1 : 0;
                counts[num % length]++;
            }
        }

        // bits = mean * 255 > 127, then np.packbits (most significant bit first).
        var result = new byte[bytes];
        for (var k = 0; k < length; k++)
        {
            if (ones[k] / counts[k] * 255 > 127)
            {
                result[k / 8] |= (byte)(0x80 >> (k % 8));
            }
        }

        return result;
    }
}
