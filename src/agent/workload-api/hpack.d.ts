// The few calls of hpack.js (CommonJS, no types of its own) that authority.ts makes.
declare module 'hpack.js' {
  export interface HpackHeader {
    name: string;
    value: string;
    neverIndex?: boolean;
  }
  export interface HpackStream {
    write(data: Buffer | HpackHeader[]): boolean;
    read(): unknown;
  }
  export interface Decompressor extends HpackStream {
    /** decodes what was written, synchronously; throws on a malformed block */
    execute(): void;
  }
  const hpack: {
    compressor: { create(options: { table: { maxSize: number } }): HpackStream };
    decompressor: { create(options: { table: { maxSize: number } }): Decompressor };
  };
  export default hpack;
}
