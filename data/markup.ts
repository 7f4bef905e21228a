// Text placed in HTML, SVG or XML (the report, the figures, OME-XML, the explorer page): the one escape.

export const escapeXml = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
