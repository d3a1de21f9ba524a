// Debian's chromium, headless through puppeteer-core, on a Pictor server's page: types a prompt, clicks Generate,
// waits for the image in the gallery, checks it decoded; then on that image clicks "edit", drags a rectangle (the
// inpainting mask), applies a new prompt, and clicks "variations", checking each new image decodes; saves a
// screenshot.
// `node browser.mjs BASE_URL CHROMIUM SCREENSHOT.png [PROMPT [EDIT_PROMPT]]`; prints one JSON line.
import puppeteer from "puppeteer-core";

const [base, executablePath, screenshot, prompt = "a small red circle", editPrompt = "two blue squares"] =
  process.argv.slice(2);
const browser = await puppeteer.launch({
  executablePath, headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
});
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 900, height: 800 });
  const errors = [];
  page.on("pageerror", e => errors.push(String(e)));
  const outside = [];
  page.on("request", r => { if (!r.url().startsWith(base) && !r.url().startsWith("data:")) outside.push(r.url()); });
  await page.goto(base + "/", { waitUntil: "networkidle0" });
  await page.waitForFunction(() => document.querySelectorAll("#model option").length > 0, { timeout: 30000 });
  await page.$eval("#prompt", el => { el.value = ""; });
  await page.type("#prompt", prompt);
  await page.$eval("#seed", el => { el.value = "7"; });
  const previews = [];
  page.on("console", m => previews.push(m.text()));
  await page.click("#generate");
  await page.waitForSelector("#gallery .card img", { timeout: 120000 });
  const decoded = sel => page.$eval(sel, img => new Promise(resolve => {
    const done = () => resolve({ complete: img.complete, width: img.naturalWidth, height: img.naturalHeight,
      download: img.closest(".card").querySelector("a").download,
      caption: img.closest(".card").querySelector("p").textContent });
    if (img.complete) done(); else img.onload = done;
  }));
  const cards = n => page.waitForFunction(k => document.querySelectorAll("#gallery .card").length >= k,
    { timeout: 120000 }, n);
  const image = await decoded("#gallery .card img");
  const progress = await page.$eval("#bar", b => ({ value: b.value, max: b.max }));
  // Edit: a rectangle over the middle of the image becomes the mask; a new prompt repaints it.
  await page.click("#gallery .card button.edit");
  const box = await (await page.$("#gallery .card canvas.rect")).boundingBox();
  await page.mouse.move(box.x + box.width * 0.25, box.y + box.height * 0.25);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.5, { steps: 4 });
  await page.mouse.move(box.x + box.width * 0.75, box.y + box.height * 0.75, { steps: 4 });
  await page.mouse.up();
  await page.$eval("#gallery .card .edit-prompt", el => { el.value = ""; });
  await page.type("#gallery .card .edit-prompt", editPrompt);
  await page.click("#gallery .card button.apply");
  await cards(2);
  const edited = await decoded("#gallery .card:first-child img");
  // Variations of the first image (now the second card).
  await page.click("#gallery .card:nth-child(2) button.variations");
  await cards(3);
  const varied = await decoded("#gallery .card:first-child img");
  const error = await page.$eval("#error", e => e.textContent);
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify({ ok: image.width > 0 && edited.width > 0 && varied.width > 0 && !error
    && errors.length === 0 && outside.length === 0, image, edited, varied, progress, error, errors, outside }));
} finally {
  await browser.close();
}
