using System.Text;
using RenderFarm.Diffusion.Imaging;
using RenderFarm.Diffusion.Watermarking;

namespace RenderFarm.Diffusion.Tests.Watermarking;

public sealed class DwtDctWatermarkTests
{
    private static readonly byte[] StableDiffusion = DwtDctWatermark.StableDiffusionPayload.ToArray();

    public static TheoryData<string> Images => ["noise", "smooth", "noise-odd-size"];

    private static RgbImage Image(string name) => name switch
    {
        "noise" => TestImages.Noise(512, 512, 7),
        "smooth" => TestImages.Smooth(512, 384),
        _ => TestImages.Noise(517, 389, 11),
    };

    [Theory]
    [MemberData(nameof(Images))]
    public void A_mark_survives_a_png_round_trip_and_is_found_without_its_length(string name)
    {
        var marked = DwtDctWatermark.Embed(Image(name), StableDiffusion);
        var reread = PngCodec.Decode(PngCodec.Encode(marked, null));

        var reading = DwtDctWatermark.Decode(reread);

        Assert.NotNull(reading);
        Assert.Equal(StableDiffusion, reading.Payload);
        Assert.Equal("StableDiffusionV1", reading.Text);
        Assert.InRange(reading.Agreement, 0.9, 1.0);
    }

    [Theory]
    [MemberData(nameof(Images))]
    public void The_reference_decoders_steps_read_our_mark(string name)
    {
        var marked = PngCodec.Decode(PngCodec.Encode(DwtDctWatermark.Embed(Image(name), StableDiffusion), null));

        Assert.Equal(StableDiffusion, ReferenceDecoder.Decode(marked, StableDiffusion.Length));
    }

    [Fact]
    public void Our_decoder_reads_a_reference_mark_as_the_reference_decoder_does()
    {
        // reference-marked.png: a smooth image marked with "StableDiffusionV1" by invisible-watermark's own dwtDct
        // encoder (bench/watermark/reference_check.py fixture). Its own decoder read these bytes back (its encoder
        // loses many bits on smooth images); ours must read exactly the same bits.
        var path = Path.Combine(AppContext.BaseDirectory, "Watermarking", "reference-marked.png");
        var image = PngCodec.Decode(File.ReadAllBytes(path));

        var ours = DwtDctWatermark.ReadBytes(image, StableDiffusion.Length);

        Assert.Equal("f7f5f9e3ed7dcd7bf7e77ff37d7fefdff1", Convert.ToHexStringLower(ours));
        Assert.Equal(ReferenceDecoder.Decode(image, StableDiffusion.Length), ours);
    }

    [Fact]
    public void The_shortest_repeating_length_is_found()
    {
        // "ac" folded onto one byte agrees in 7 of 8 bits; "acac" agrees fully but is longer.
        var marked = DwtDctWatermark.Embed(TestImages.Noise(256, 256, 3), "ac"u8);

        Assert.Equal("ac", DwtDctWatermark.Decode(marked)?.Text);
    }

    [Fact]
    public void A_payload_that_is_not_text_is_printed_as_hex()
    {
        var marked = DwtDctWatermark.Embed(TestImages.Noise(256, 256, 5), [0x01, 0xfe, 0x80]);

        Assert.Equal("hex:01fe80", DwtDctWatermark.Decode(marked)?.Text);
    }

    public static TheoryData<string> CleanImages => ["noise", "smooth", "noise-odd-size", "flat", "stripes"];

    [Theory]
    [MemberData(nameof(CleanImages))]
    public void An_unmarked_image_has_no_mark(string name)
    {
        var image = name switch
        {
            "flat" => TestImages.Flat(512, 512, 140),
            "stripes" => Stripes(),
            _ => Image(name),
        };

        Assert.Null(DwtDctWatermark.Decode(image));
    }

    [Fact]
    public void An_image_too_small_to_carry_a_mark_is_refused()
    {
        var error = Assert.Throws<ArgumentException>(() => DwtDctWatermark.Embed(TestImages.Noise(128, 128, 1), StableDiffusion));

        Assert.Contains("65536", error.Message, StringComparison.Ordinal);
        Assert.Null(DwtDctWatermark.Decode(TestImages.Noise(128, 128, 1)));
    }

    [Theory]
    [InlineData("")]
    [InlineData("this payload is thirty-three byte")]
    public void Payload_lengths_outside_1_to_32_bytes_are_refused(string text)
    {
        Assert.NotNull(DwtDctWatermark.PayloadProblem(Encoding.UTF8.GetBytes(text)));
    }

    [Fact]
    public void A_payload_without_both_bit_values_is_refused()
    {
        Assert.NotNull(DwtDctWatermark.PayloadProblem([0, 0]));
        Assert.NotNull(DwtDctWatermark.PayloadProblem([0xff]));
        Assert.NotNull(DwtDctWatermark.PayloadProblem("UU"u8));
        Assert.Null(DwtDctWatermark.PayloadProblem(StableDiffusion));
    }

    [Fact]
    public void Only_the_u_channel_changes_beyond_rounding()
    {
        // Smooth, so no channel clips: clipping would move luma too.
        var image = TestImages.Smooth(256, 256);
        var marked = DwtDctWatermark.Embed(image, StableDiffusion);

        // Y = 0.299 R + 0.587 G + 0.114 B is kept: each pixel's luma moves by rounding only.
        for (var i = 0; i < image.Width * image.Height; i++)
        {
            Assert.InRange(Luma(marked, i) - Luma(image, i), -1.0, 1.0);
        }
    }

    private static double Luma(RgbImage image, int i) =>
        0.299 * image.Pixels[3 * i] + 0.587 * image.Pixels[3 * i + 1] + 0.114 * image.Pixels[3 * i + 2];

    // A periodic texture agrees with itself at many lengths: the control length must reject it.
    private static RgbImage Stripes()
    {
        var pixels = new byte[512 * 512 * 3];
        for (var i = 0; i < 512 * 512; i++)
        {
            var x = i % 512;
            pixels[3 * i + 2] = (byte)(x % 16 < 8 ? 220 : 40);
            pixels[3 * i] = 100;
            pixels[3 * i + 1] = 100;
        }

        return new RgbImage(512, 512, pixels);
    }
}
