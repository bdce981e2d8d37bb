/** Zip record signatures, sizes and flags (APPNOTE.TXT), shared by the reader and the writer. */
export const LOCAL_HEADER_SIGNATURE = 0x04034b50;
export const CENTRAL_HEADER_SIGNATURE = 0x02014b50;
export const DATA_DESCRIPTOR_SIGNATURE = 0x08074b50;
export const END_SIGNATURE = 0x06054b50;
export const ZIP64_END_SIGNATURE = 0x06064b50;
export const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;

export const LOCAL_HEADER_SIZE = 30;
export const CENTRAL_HEADER_SIZE = 46;
export const END_SIZE = 22;
export const ZIP64_LOCATOR_SIZE = 20;
export const ZIP64_END_SIZE = 56;

export const ZIP64_EXTRA_ID = 0x0001;
export const FLAG_ENCRYPTED = 0x0001;
export const FLAG_DATA_DESCRIPTOR = 0x0008;
export const FLAG_UTF8 = 0x0800;
export const METHOD_STORED = 0;
