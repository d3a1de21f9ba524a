using Pictor.Imaging;
using Pictor.Imaging.Png;
using Pictor.Pipelines;
using Pictor.Pipelines.Editing;
using Pictor.Pipelines.Unclip;
using static Pictor.Server.Tests.TestServers;

namespace Pictor.Server.Tests;

/// <summary>POST /v1/images/edits and /v1/images/variations in memory: OpenAI's semantics mapped onto the library's
/// edits, images equal to the library's for the same seed, metadata that regenerates them (what `pictor verify
/// --source --mask` calls), and every bad input as OpenAI's error JSON.</summary>
[Collection("Server")]
public sealed class EditTests
{
    private static readonly TextToImage Model = new(TinyPipeline(), "tiny");
    private static readonly TextToImage Dalle = new(TinyDalle(), "tiny-dalle");
    private static readonly TextToImage Unclip = new(TinyUnclip(), "tiny-unclip");

    private static PictorFactory Server(ServerOptions? options = null) =>
        new(options ?? Options(), new ModelCatalog([Model, Dalle, Unclip]));

    /// <summary>An image as the server reads it: through a PNG.</summary>
    private static Image ViaPng(Image img) => Image.Load(img.ToPng());

    private static GenerationParameters Meta(byte[] png) => GenerationParameters.FromPng(PngDecoder.Decode(png))!;

    private static GenerationRequest Request(string prompt, int n = 2) =>
        new(prompt) { Seed = 5, Count = n, Steps = 4, Sampler = "ddim" };

    [Fact]
    public async Task A_transparent_mask_inpaints_there_and_the_metadata_regenerates_the_image()
    {
        using var factory = Server();
        var src = Noise(16, 3);
        var mask = Noise(16, 4);   // OpenAI's mask: an RGBA PNG whose fully transparent pixels are repainted
        bool Inside(int i) => i % 16 is >= 4 and < 12 && i / 16 is >= 4 and < 12;
        for (int i = 0; i < 256; i++) if (Inside(i)) mask.Rgba[4 * i + 3] = 0;
        var pngs = await Pngs(await factory.CreateClient().PostAsync("/v1/images/edits", Form(src, mask,
            ("prompt", "a small red circle"), ("seed", "5"), ("n", "2"), ("steps", "4"), ("sampler", "ddim"))));
        var library = Model.Edit(EditRequest.Inpaint(Request("a small red circle"), ViaPng(src), ViaPng(mask)));
        for (int k = 0; k < 2; k++)
        {
            var img = Image.Load(pngs[k]);
            Assert.Equal(library.Images[k].Image.Rgba, img.Rgba);
            for (int i = 0; i < 256; i++)
                if (!Inside(i)) Assert.Equal(src.Rgba.AsSpan(4 * i, 4).ToArray(), img.Rgba.AsSpan(4 * i, 4).ToArray());
            var g = Meta(pngs[k]);
            Assert.Equal(EditOperation.Inpaint, g.Edit!.Operation);
            Assert.Equal(EditParameters.PixelHash(ViaPng(mask)), g.Edit.MaskSha256);
            // pictor verify --source image.png --mask mask.png: the same call on the same files.
            Assert.Equal(img.Rgba, Model.RegenerateEdit(g, ViaPng(src), ViaPng(mask)).Rgba);
        }
    }

    [Fact]
    public async Task Without_a_mask_transparent_pixels_are_inpainted_and_an_opaque_image_is_image_to_image()
    {
        using var factory = Server();
        using var client = factory.CreateClient();
        var holed = Noise(16, 6);
        for (int i = 0; i < 256; i++) if (i % 16 < 8) holed.Rgba[4 * i + 3] = 0;
        var png = (await Pngs(await client.PostAsync("/v1/images/edits", Form(holed, null,
            ("prompt", "two blue squares"), ("seed", "5"), ("n", "1"), ("steps", "4")))))[0];
        var g = Meta(png);
        Assert.Equal(EditOperation.Inpaint, g.Edit!.Operation);
        Assert.Equal(EditParameters.PixelHash(ViaPng(holed)), g.Edit.MaskSha256);   // the image is its own mask
        Assert.Equal(Image.Load(png).Rgba, Model.RegenerateEdit(g, ViaPng(holed), ViaPng(holed)).Rgba);

        var src = Noise(16, 7);
        foreach (var (strength, expected) in new[] { ((string?)null, EditBody.DefaultStrength), ("0.3", 0.3f) })
        {
            var fields = new List<(string, string)> { ("prompt", "two blue squares"), ("seed", "5"), ("n", "2"),
                ("steps", "4"), ("sampler", "ddim") };
            if (strength != null) fields.Add(("strength", strength));
            var pngs = await Pngs(await client.PostAsync("/v1/images/edits", Form(src, null, [.. fields])));
            var m = Meta(pngs[1]);
            Assert.Equal((EditOperation.ImageToImage, expected), (m.Edit!.Operation, m.Edit.Strength));
            var library = Model.Edit(EditRequest.ImageToImage(Request("two blue squares"), src, expected));
            Assert.Equal(library.Images[1].Image.Rgba, Image.Load(pngs[1]).Rgba);
            Assert.Equal(Image.Load(pngs[1]).Rgba, Model.RegenerateEdit(m, src, null).Rgba);
        }
    }

    [Fact]
    public async Task An_unclip_models_variations_decode_the_images_clip_embedding()
    {
        using var factory = Server();
        var client = factory.CreateClient();
        var src = Noise(24, 6);   // any size: the CLIP reads it resized
        var r = await client.PostAsync("/v1/images/variations", Form(src, null, ("model", "tiny-unclip"),
            ("seed", "4"), ("n", "2"), ("steps", "5"), ("response_format", "b64_json")));
        var body = await ReadJson(r);
        Assert.True(r.IsSuccessStatusCode, body.ToString());
        var pngs = await Pngs(r);
        var library = Unclip.Vary(ViaPng(src), new GenerationRequest("") { Seed = 4, Count = 2, Steps = 5 });
        Assert.Equal(library.Images[1].Image.Rgba, Image.Load(pngs[1]).Rgba);
        var g = Meta(pngs[1]);
        Assert.Equal((EditOperation.Vary, true), (g.Edit!.Operation, g.Edit.Resized));
        var e = await Error(await client.PostAsync("/v1/images/variations", Form(src, null, ("model", "tiny-unclip"),
            ("strength", "0.5"))), 400);
        Assert.Contains("drop strength", e.GetProperty("message").GetString());
        e = await Error(await client.PostAsync("/v1/images/edits", Form(src, null, ("model", "tiny-unclip"),
            ("prompt", "a small red circle"))), 400);
        Assert.Contains("does not edit", e.GetProperty("message").GetString());
        var models = await ReadJson(await client.GetAsync("/v1/models"));
        var row = models.GetProperty("data").EnumerateArray().Single(m => m.GetProperty("id").GetString() == "tiny-unclip");
        Assert.True(row.GetProperty("variations").GetBoolean());
        Assert.Equal(0, row.GetProperty("edits").GetArrayLength());
    }

    [Fact]
    public async Task Variations_are_image_to_image_from_the_empty_prompt()
    {
        using var factory = Server();
        var src = Noise(16, 8);
        var r = await factory.CreateClient().PostAsync("/v1/images/variations", Form(src, null, ("seed", "9"),
            ("n", "2"), ("steps", "10"), ("response_format", "b64_json")));
        var body = await ReadJson(r);
        Assert.True(r.IsSuccessStatusCode, body.ToString());
        Assert.Equal("", body.GetProperty("data")[0].GetProperty("revised_prompt").GetString());
        var pngs = await Pngs(r);
        var library = Model.Edit(EditRequest.ImageToImage(new GenerationRequest("") { Seed = 9, Count = 2, Steps = 10,
            Guidance = 1f }, src, EditBody.DefaultStrength));
        Assert.Equal(library.Images[0].Image.Rgba, Image.Load(pngs[0]).Rgba);
        Assert.Equal(library.Images[1].Image.Rgba, Image.Load(pngs[1]).Rgba);
        Assert.NotEqual(src.Rgba, Image.Load(pngs[0]).Rgba);
        var g = Meta(pngs[1]);
        Assert.Equal(("", EditOperation.ImageToImage, 0.6f), (g.Prompt, g.Edit!.Operation, g.Edit.Strength));
        Assert.Equal(Image.Load(pngs[1]).Rgba, Model.RegenerateEdit(g, src, null).Rgba);
    }

    [Fact]
    public async Task A_dalle_model_completes_from_rows_or_a_bottom_rows_mask_and_refuses_other_edits()
    {
        using var factory = Server();
        using var client = factory.CreateClient();
        var src = Noise(16, 10);
        (string, string)[] Fields(params (string, string)[] more) =>
            [("prompt", "a small red circle"), ("model", "tiny-dalle"), ("seed", "3"), .. more];
        var byRows = await Pngs(await client.PostAsync("/v1/images/edits", Form(src, null, Fields(("rows", "2")))));
        var bottom = Noise(16, 11);   // the bottom 8 pixels: token rows 2 and 3 of the 4x4 grid
        for (int i = 128; i < 256; i++) bottom.Rgba[4 * i + 3] = 0;
        var byMask = await Pngs(await client.PostAsync("/v1/images/edits", Form(src, bottom, Fields())));
        Assert.Equal(byRows[0], byMask[0]);
        var g = Meta(byRows[0]);
        Assert.Equal((EditOperation.Complete, 2), (g.Edit!.Operation, g.Edit.Rows));
        Assert.Equal(Image.Load(byRows[0]).Rgba, Dalle.RegenerateEdit(g, src, null).Rgba);

        var ragged = Noise(16, 12);
        for (int i = 160; i < 256; i++) ragged.Rgba[4 * i + 3] = 0;   // 6 pixels: not whole token rows
        var e = await Error(await client.PostAsync("/v1/images/edits", Form(src, ragged, Fields())), 400);
        Assert.Contains("transparent area must be whole token rows at the bottom",
            e.GetProperty("message").GetString());
        e = await Error(await client.PostAsync("/v1/images/edits", Form(src, null, Fields())), 400);
        Assert.Contains("edits by completing an image from its top token rows: send rows=K (1 to 3)",
            e.GetProperty("message").GetString());
        e = await Error(await client.PostAsync("/v1/images/edits", Form(src, null, Fields(("strength", "0.5")))), 400);
        Assert.Equal("strength", e.GetProperty("param").GetString());
        e = await Error(await client.PostAsync("/v1/images/variations", Form(src, null, ("model", "tiny-dalle"))), 400);
        Assert.Contains("cannot make variations", e.GetProperty("message").GetString());
        Assert.Contains("needs a diffusion model (here: tiny)", e.GetProperty("message").GetString());
        Assert.Equal("unsupported_operation", e.GetProperty("code").GetString());
    }

    [Fact]
    public async Task Bad_uploads_are_openai_errors_that_name_the_limit_or_the_fix()
    {
        using var factory = Server(Options() with { MaxUploadBytes = 20_000, MaxImageSide = 32 });
        using var client = factory.CreateClient();
        var src = Noise(16, 1);
        async Task<string> Message(string route, HttpContent body, int status, string code)
        {
            var e = await Error(await client.PostAsync($"/v1/images/{route}", body), status);
            Assert.Equal(code, e.GetProperty("code").GetString());
            string m = e.GetProperty("message").GetString()!;
            Assert.DoesNotContain('\n', m);
            return m;
        }
        Assert.Contains("not multipart/form-data", await Message("edits", Json(new { prompt = "x" }), 400,
            "invalid_content_type"));
        Assert.Contains("the image is missing", await Message("edits", Form(null, null, ("prompt", "x")), 400,
            "missing_parameter"));
        Assert.Contains("the prompt is missing", await Message("edits", Form(src), 400, "missing_parameter"));
        var notPng = new MultipartFormDataContent
        {
            { new ByteArrayContent("GIF89a...."u8.ToArray()), "image", "a.gif" }, { new StringContent("x"), "prompt" },
        };
        Assert.Contains("the image is a GIF; this API takes PNG", await Message("edits", notPng, 400,
            "invalid_image_format"));
        Assert.Contains("over this server's limit of 32 pixels a side", await Message("variations",
            Form(Noise(40, 1)), 413, "image_too_large"));
        Assert.Contains("over this server's limit of 20000 bytes", await Message("variations", Form(Noise(90, 1)), 413,
            "request_too_large"));
        Assert.Contains("the source image is 24x24 but the model makes 16x16; resize it, or pass --resize "
            + "(EditRequest.Resize = true; over HTTP the field resize=true)",
            await Message("variations", Form(Noise(24, 1)), 400, "invalid_value"));
        Assert.True((await client.PostAsync("/v1/images/variations", Form(Noise(24, 1), null, ("resize", "true"),
            ("steps", "2")))).IsSuccessStatusCode);
        Assert.Contains("the mask is 8x8 but the image is 16x16", await Message("edits",
            Form(src, Noise(8, 1), ("prompt", "x")), 400, "invalid_mask"));
        Assert.Contains("unknown field 'prompt'", await Message("variations", Form(src, null, ("prompt", "x")), 400,
            "unknown_parameter"));
        Assert.Contains("strength must be a number, got \"lots\"", await Message("edits",
            Form(src, null, ("prompt", "x"), ("strength", "lots")), 400, "invalid_type"));
        Assert.Contains("strength must be in (0, 1]", await Message("edits",
            Form(src, null, ("prompt", "x"), ("strength", "1.5")), 400, "invalid_value"));
        var holed = Noise(16, 2);
        holed.Rgba[3] = 0;
        Assert.Contains("strength is for image-to-image", await Message("edits",
            Form(holed, null, ("prompt", "x"), ("strength", "0.5")), 400, "unsupported_parameter"));
        Assert.Contains("rows is for DALL-E completion", await Message("edits",
            Form(src, null, ("prompt", "x"), ("rows", "2")), 400, "unsupported_parameter"));
    }
}
