// Drives the emulator with Bandwidth's official Node SDKs and prints what they returned,
// as one JSON object, for tests/test_sdk_node.py to check.
// Usage: node sdk_check.js BASE_URL ACCOUNT_ID
'use strict';

const { Configuration, MessagesApi, MediaApi } = require('bandwidth-sdk');
const legacy = require('@bandwidth/messaging');
const { Readable } = require('stream');

const [base, account] = process.argv.slice(2);
const apiBase = `${base}/api/v2`;
const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3, 4]);

async function advance(seconds) {
  const resp = await fetch(`${base}/_emulator/clock/advance`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ seconds }),
  });
  if (resp.status !== 200) throw new Error(`advance: ${resp.status}`);
}

async function main() {
  const out = {};
  // docs/bandwidth-behaviour.md, 'The official SDKs': basePath wins over the per-operation servers.
  const config = new Configuration({ username: 'user', password: 'pass', basePath: apiBase });
  const messages = new MessagesApi(config);
  const media = new MediaApi(config);

  const created = await messages.createMessage(account, {
    applicationId: '93de2206-9669-4e07-948d-329f4b722ee2',
    to: new Set(['+15552221111']),
    from: '+15554443333',
    text: 'hello from node',
    tag: 'node',
    expiration: new Date(Date.now() + 86400000).toISOString(),
  });
  out.create = { status: created.status, data: created.data };
  await advance(60);

  const listed = await messages.listMessages(account, undefined, '+15554443333');
  out.list = { status: listed.status, data: listed.data };
  const paged = await messages.listMessages(
    account, undefined, undefined, undefined, 'DELIVERED', 'OUTBOUND', undefined, 'sms',
    undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined,
    undefined, undefined, undefined, undefined, undefined, undefined, undefined, undefined,
    'receiveTime:desc', undefined, 1, true);
  out.listFiltered = { status: paged.status, data: paged.data };

  const uploaded = await media.uploadMedia(account, 'dir/node.png', png, 'image/png', 'no-cache');
  out.upload = { status: uploaded.status };
  const got = await media.getMedia(account, 'dir/node.png', { responseType: 'arraybuffer' });
  out.get = {
    status: got.status,
    contentType: got.headers['content-type'],
    cacheControl: got.headers['cache-control'],
    bytes: Buffer.from(got.data).equals(png),
  };
  const mediaList = await media.listMedia(account);
  out.listMedia = { status: mediaList.status, data: mediaList.data };

  // The legacy SDK validates every response against its schema at runtime, e.g. it
  // rejects pageInfo links that are null instead of absent.
  const client = new legacy.Client({
    basicAuthUserName: 'user',
    basicAuthPassword: 'pass',
    environment: legacy.Environment.Custom,
    baseUrl: apiBase,
  });
  const api = new legacy.ApiController(client);
  const legacyList = await api.getMessages(account, undefined, '+15554443333');
  out.legacyList = { status: legacyList.statusCode, data: legacyList.result };
  // Its upload streams the body with Transfer-Encoding: chunked (no Content-Length).
  const legacyUpload = await api.uploadMedia(
    account, 'legacy.png', new legacy.FileWrapper(Readable.from([png])), 'image/png');
  out.legacyUpload = { status: legacyUpload.statusCode };
  const legacyMedia = await api.listMedia(account);
  out.legacyListMedia = { status: legacyMedia.statusCode, names: legacyMedia.result.map((m) => m.mediaName).sort() };

  const deleted = await media.deleteMedia(account, 'dir/node.png');
  out.delete = { status: deleted.status };
  try {
    const again = await media.deleteMedia(account, 'dir/node.png');
    out.deleteAgain = { status: again.status };
  } catch (err) {
    out.deleteAgain = { status: err.response && err.response.status, data: err.response && err.response.data };
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((err) => {
  const detail = err.response ? { status: err.response.status, data: err.response.data } : {};
  process.stderr.write(`${err.stack || err}\n${JSON.stringify(detail)}\n`);
  process.exit(1);
});
