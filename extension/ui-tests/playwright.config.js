/**
 * Browser tests in Debian's Chromium (never a downloaded browser) against a real JupyterLab
 * with Kiln's extension, the real Kiln kernel, a real `kiln server` and a real registry, all
 * started by `cargo xtask test`, which sets the variables read here.
 */
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');

const port = process.env.KILN_UI_PORT || '8888';
// A second JupyterLab whose store does not answer (nothing listens on port 1): what the
// extension says then is tested against it, by the `store-down` project.
const downPort = process.env.KILN_UI_DOWN_PORT || '8889';
const DEAD_STORE = 'http://127.0.0.1:1';
// `cargo xtask bench lab` sets KILN_UI_BENCH=lab, `cargo xtask bench ui` KILN_UI_BENCH=ui.
const bench = process.env.KILN_UI_BENCH || '';

function jupyterLab(serverPort, env) {
  return {
    command: `jupyter lab --config jupyter_server_test_config.py`,
    url: `http://127.0.0.1:${serverPort}/lab`,
    timeout: 120 * 1000,
    reuseExistingServer: false,
    stdout: 'pipe',
    stderr: 'pipe',
    env: { KILN_UI_PORT: serverPort, ...env }
  };
}

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
    // An action on an element that never becomes actionable fails with the locator named,
    // instead of waiting out the whole test.
    actionTimeout: 60 * 1000,
    trace: 'off',
    video: 'off',
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
    }
  },
  // A benchmark alone, on the real store.
  projects: bench
    ? [{ name: 'bench', testMatch: bench === 'ui' ? /experiments\.bench\.ts$/ : /pipeline\.bench\.ts$/, use: { baseURL: `http://127.0.0.1:${port}` } }]
    : [
        { name: 'kiln', testIgnore: /store-down/, use: { baseURL: `http://127.0.0.1:${port}` } },
        { name: 'store-down', testMatch: /store-down/, use: { baseURL: `http://127.0.0.1:${downPort}` } }
      ],
  webServer: bench
    ? [jupyterLab(port, {})]
    : [
        jupyterLab(port, {}),
        jupyterLab(downPort, { KILN_SERVER: DEAD_STORE, KILN_TOKEN: 'unused', KILN_UI_ROOT: `${process.env.KILN_UI_ROOT || '.'}/store-down` })
      ]
};
