using System.Buffers.Binary;
using System.Text;
using RenderFarm.Diffusion.Hires;
using RenderFarm.Diffusion.Imaging;
using static RenderFarm.Diffusion.Tests.Hires.HiresTestKit;

namespace RenderFarm.Diffusion.Tests.Hires;

public sealed class StreamingPngWriterTests
{
    [Fact]
    public async Task Rows_written_one_by_one_decode_with_skia_to_the_same_pixels_and_carry_the_text()
    {
        var image = Noise(300, 200, seed: 9); // incompressible: several IDAT chunks
        using var output = new MemoryStream();

        await using (var writer = new StreamingPngWriter(output, image.Width, image.Height, [KeyValuePair.Create(PngCodec.ParametersKeyword, "a lighthouse\nSteps: 20")]))
        {
            for (var y = 0; y < image.Height; y++)
            {
                await writer.WriteRowAsync(image.Pixels.AsMemory(y * image.Width * 3, image.Width * 3), CancellationToken.None);
            }

            await writer.CompleteAsync(CancellationToken.None);
        }

        var png = output.ToArray();
        PngCodec.Decode(png).Pixels.ShouldBe(image.Pixels);
        PngCodec.ReadTextChunks(png)[PngCodec.ParametersKeyword].ShouldBe("a lighthouse\nSteps: 20");
        var chunks = Chunks(png);
        chunks[0].ShouldBe("IHDR");
        chunks[1].ShouldBe("tEXt");
        chunks.Count(c => c == "IDAT").ShouldBeGreaterThan(1);
        chunks[^1].ShouldBe("IEND");
    }

    [Fact]
    public async Task Text_outside_latin1_goes_into_an_itxt_chunk()
    {
        using var output = new MemoryStream();
        await using (var writer = new StreamingPngWriter(output, 8, 8, [KeyValuePair.Create(PngCodec.ParametersKeyword, "灯台 🌅")]))
        {
            for (var y = 0; y < 8; y++)
            {
                await writer.WriteRowAsync(new byte[24], CancellationToken.None);
            }

            await writer.CompleteAsync(CancellationToken.None);
        }

        PngCodec.ReadTextChunks(output.ToArray())[PngCodec.ParametersKeyword].ShouldBe("灯台 🌅");
        Chunks(output.ToArray()).ShouldContain("iTXt");
    }

    [Fact]
    public async Task Completing_before_the_last_row_is_refused()
    {
        using var output = new MemoryStream();
        await using var writer = new StreamingPngWriter(output, 8, 8);
        await writer.WriteRowAsync(new byte[24], CancellationToken.None);

        await Should.ThrowAsync<InvalidOperationException>(() => writer.CompleteAsync(CancellationToken.None));
    }

    [Fact]
    public async Task A_row_of_the_wrong_length_is_refused()
    {
        using var output = new MemoryStream();
        await using var writer = new StreamingPngWriter(output, 8, 8);

        await Should.ThrowAsync<ArgumentException>(async () => await writer.WriteRowAsync(new byte[23], CancellationToken.None));
    }

    private static List<string> Chunks(byte[] png)
    {
        var types = new List<string>();
        for (var offset = 8; offset < png.Length;)
        {
            var length = (int)BinaryPrimitives.ReadUInt32BigEndian(png.AsSpan(offset));
            types.Add(Encoding.ASCII.GetString(png, offset + 4, 4));
            offset += 12 + length;
        }

        return types;
    }
}
