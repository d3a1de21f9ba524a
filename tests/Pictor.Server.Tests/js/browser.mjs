// Debian's chromium, headless through puppeteer-core, on a Pictor server's page: types a prompt, clicks Generate,
// waits for the image in the gallery, checks it decoded and saves a screenshot.
// `node browser.mjs BASE_URL CHROMIUM SCREENSHOT.png [PROMPT]`; prints one JSON line.
import puppeteer from "puppeteer-core";

const [base, executablePath, screenshot, prompt = "a small red circle"] = process.argv.slice(2);
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
  const image = await page.$eval("#gallery .card img", img => new Promise(resolve => {
    const done = () => resolve({ complete: img.complete, width: img.naturalWidth, height: img.naturalHeight,
      download: img.parentElement.querySelector("a").download });
    if (img.complete) done(); else img.onload = done;
  }));
  const progress = await page.$eval("#bar", b => ({ value: b.value, max: b.max }));
  const error = await page.$eval("#error", e => e.textContent);
  await page.screenshot({ path: screenshot });
  console.log(JSON.stringify({ ok: image.width > 0 && !error && errors.length === 0 && outside.length === 0,
    image, progress, error, errors, outside }));
} finally {
  await browser.close();
}
