// Sends multi-channel (RBM with SMS fallback) messages with Bandwidth's official Node SDK,
// taps a suggestion through the control API, and prints what came back as one JSON object,
// for tests/test_sdk_node.py to check.
// Usage: node multichannel_check.js BASE_URL ACCOUNT_ID
'use strict';

const { Configuration, MultiChannelApi } = require('bandwidth-sdk');

const [base, account] = process.argv.slice(2);
const APP = '93de2206-9669-4e07-948d-329f4b722ee2';

async function control(path, body) {
  const resp = await fetch(`${base}/_emulator${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body || {}),
  });
  if (resp.status >= 300) throw new Error(`${path}: ${resp.status} ${await resp.text()}`);
  return resp.json();
}

async function main() {
  const out = {};
  const config = new Configuration({ username: 'user', password: 'pass', basePath: `${base}/api/v2` });
  const api = new MultiChannelApi(config);

  const card = {
    orientation: 'VERTICAL',
    cardContent: {
      title: 'Table for two',
      description: 'Ready at 8 pm',
      media: { fileUrl: 'https://example.com/table.png', height: 'MEDIUM' },
      suggestions: [{ type: 'REPLY', text: 'Confirm', postbackData: 'Y29uZmlybQ==' }],
    },
  };
  const created = await api.createMultiChannelMessage(account, {
    to: '+15552223333',
    tag: 'node-rbm',
    channelList: [
      { from: 'BandwidthRBM', applicationId: APP, channel: 'RBM', content: card },
      { from: '+15554443333', applicationId: APP, channel: 'SMS', content: { text: 'Table for two at 8 pm' } },
    ],
  });
  out.create = { status: created.status, data: created.data };

  await control('/clock/advance', { seconds: 5 });
  await control(`/messages/${created.data.data.id}/reply`, { suggestion: 'Confirm' });
  await control('/clock/advance', { seconds: 1 });

  try {
    await api.createMultiChannelMessage(account, { to: '+15552223333', channelList: [] });
    out.invalid = { status: 'accepted' };
  } catch (err) {
    out.invalid = { status: err.response.status, data: err.response.data };
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err));
  process.exit(1);
});
