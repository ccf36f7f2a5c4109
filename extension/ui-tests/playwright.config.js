/**
 * Browser tests in Debian's Chromium (never a downloaded browser) against a real JupyterLab
 * with Kiln's extension, the real Kiln kernel, a real `kiln server` and a real registry, all
 * started by `cargo xtask test`, which sets the variables read here.
 */
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');

const port = process.env.KILN_UI_PORT || '8888';

module.exports = {
  ...baseConfig,
  timeout: 15 * 60 * 1000,
  expect: { timeout: 30 * 1000 },
  retries: 0,
  workers: 1,
  reporter: [['list']],
  outputDir: process.env.KILN_UI_OUTPUT || 'test-results',
  use: {
    ...baseConfig.use,
    baseURL: `http://127.0.0.1:${port}`,
    trace: 'off',
    video: 'off',
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
    }
  },
  webServer: {
    command: `jupyter lab --config jupyter_server_test_config.py`,
    url: `http://127.0.0.1:${port}/lab`,
    timeout: 120 * 1000,
    reuseExistingServer: false,
    stdout: 'pipe',
    stderr: 'pipe'
  }
};
