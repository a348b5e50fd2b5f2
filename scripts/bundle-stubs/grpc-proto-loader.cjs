// Stands in for @grpc/proto-loader in the bundles (scripts/build-agent.mjs, bundleOptions). grpc-js requires it
// only to serve channelz or ORCA, which Wisp never turns on, and even then it reads .proto files from grpc-js'
// own directory, which a bundle does not have. Left out, it, protobufjs and long are 191 KB less for V8 to
// compile and keep at every start.
'use strict';
function unavailable() {
  throw new Error('@grpc/proto-loader is not in this bundle: grpc-js channelz and ORCA are not available in Wisp');
}
module.exports = { loadSync: unavailable, load: unavailable, fromJSON: unavailable };
