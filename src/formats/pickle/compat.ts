/**
 * Python 2 names of modules and globals, mapped to their Python 3 names the way CPython 3.11's
 * Unpickler.find_class does for protocols 0-2 (tables copied from Lib/_compat_pickle.py), so a
 * torch 0.4 file pickled under Python 2 names `builtins.set`, not `__builtin__.set`.
 */

const IMPORT_MAPPING: ReadonlyMap<string, string> = new Map([
  ["__builtin__", "builtins"],
  ["copy_reg", "copyreg"],
  ["Queue", "queue"],
  ["SocketServer", "socketserver"],
  ["ConfigParser", "configparser"],
  ["repr", "reprlib"],
  ["tkFileDialog", "tkinter.filedialog"],
  ["tkSimpleDialog", "tkinter.simpledialog"],
  ["tkColorChooser", "tkinter.colorchooser"],
  ["tkCommonDialog", "tkinter.commondialog"],
  ["Dialog", "tkinter.dialog"],
  ["Tkdnd", "tkinter.dnd"],
  ["tkFont", "tkinter.font"],
  ["tkMessageBox", "tkinter.messagebox"],
  ["ScrolledText", "tkinter.scrolledtext"],
  ["Tkconstants", "tkinter.constants"],
  ["Tix", "tkinter.tix"],
  ["ttk", "tkinter.ttk"],
  ["Tkinter", "tkinter"],
  ["markupbase", "_markupbase"],
  ["_winreg", "winreg"],
  ["thread", "_thread"],
  ["dummy_thread", "_dummy_thread"],
  ["dbhash", "dbm.bsd"],
  ["dumbdbm", "dbm.dumb"],
  ["dbm", "dbm.ndbm"],
  ["gdbm", "dbm.gnu"],
  ["xmlrpclib", "xmlrpc.client"],
  ["SimpleXMLRPCServer", "xmlrpc.server"],
  ["httplib", "http.client"],
  ["htmlentitydefs", "html.entities"],
  ["HTMLParser", "html.parser"],
  ["Cookie", "http.cookies"],
  ["cookielib", "http.cookiejar"],
  ["BaseHTTPServer", "http.server"],
  ["test.test_support", "test.support"],
  ["commands", "subprocess"],
  ["urlparse", "urllib.parse"],
  ["robotparser", "urllib.robotparser"],
  ["urllib2", "urllib.request"],
  ["anydbm", "dbm"],
  ["_abcoll", "collections.abc"],
  ["cPickle", "pickle"],
  ["_elementtree", "xml.etree.ElementTree"],
  ["FileDialog", "tkinter.filedialog"],
  ["SimpleDialog", "tkinter.simpledialog"],
  ["DocXMLRPCServer", "xmlrpc.server"],
  ["SimpleHTTPServer", "http.server"],
  ["CGIHTTPServer", "http.server"],
  ["UserDict", "collections"],
  ["UserList", "collections"],
  ["UserString", "collections"],
  ["whichdb", "dbm"],
  ["StringIO", "io"],
  ["cStringIO", "io"],
]);

const NAME_MAPPING: ReadonlyMap<string, readonly [string, string]> = new Map<
  string,
  readonly [string, string]
>([
  ["__builtin__.xrange", ["builtins", "range"]],
  ["__builtin__.reduce", ["functools", "reduce"]],
  ["__builtin__.intern", ["sys", "intern"]],
  ["__builtin__.unichr", ["builtins", "chr"]],
  ["__builtin__.unicode", ["builtins", "str"]],
  ["__builtin__.long", ["builtins", "int"]],
  ["itertools.izip", ["builtins", "zip"]],
  ["itertools.imap", ["builtins", "map"]],
  ["itertools.ifilter", ["builtins", "filter"]],
  ["itertools.ifilterfalse", ["itertools", "filterfalse"]],
  ["itertools.izip_longest", ["itertools", "zip_longest"]],
  ["UserDict.IterableUserDict", ["collections", "UserDict"]],
  ["UserList.UserList", ["collections", "UserList"]],
  ["UserString.UserString", ["collections", "UserString"]],
  ["whichdb.whichdb", ["dbm", "whichdb"]],
  ["_socket.fromfd", ["socket", "fromfd"]],
  ["_multiprocessing.Connection", ["multiprocessing.connection", "Connection"]],
  ["multiprocessing.process.Process", ["multiprocessing.context", "Process"]],
  ["multiprocessing.forking.Popen", ["multiprocessing.popen_fork", "Popen"]],
  ["urllib.ContentTooShortError", ["urllib.error", "ContentTooShortError"]],
  ["urllib.getproxies", ["urllib.request", "getproxies"]],
  ["urllib.pathname2url", ["urllib.request", "pathname2url"]],
  ["urllib.quote_plus", ["urllib.parse", "quote_plus"]],
  ["urllib.quote", ["urllib.parse", "quote"]],
  ["urllib.unquote_plus", ["urllib.parse", "unquote_plus"]],
  ["urllib.unquote", ["urllib.parse", "unquote"]],
  ["urllib.url2pathname", ["urllib.request", "url2pathname"]],
  ["urllib.urlcleanup", ["urllib.request", "urlcleanup"]],
  ["urllib.urlencode", ["urllib.parse", "urlencode"]],
  ["urllib.urlopen", ["urllib.request", "urlopen"]],
  ["urllib.urlretrieve", ["urllib.request", "urlretrieve"]],
  ["urllib2.HTTPError", ["urllib.error", "HTTPError"]],
  ["urllib2.URLError", ["urllib.error", "URLError"]],
  ["multiprocessing.AuthenticationError", ["multiprocessing.context", "AuthenticationError"]],
  ["multiprocessing.BufferTooShort", ["multiprocessing.context", "BufferTooShort"]],
  ["multiprocessing.ProcessError", ["multiprocessing.context", "ProcessError"]],
  ["multiprocessing.TimeoutError", ["multiprocessing.context", "TimeoutError"]],
  ["__builtin__.basestring", ["builtins", "str"]],
  ["UserDict.UserDict", ["collections", "UserDict"]],
  ["socket._socketobject", ["socket", "SocketType"]],
  ["exceptions.StandardError", ["builtins", "Exception"]],
]);

/** Python 2's `exceptions` module: every one of these became `builtins.<name>`. */
const PYTHON2_EXCEPTIONS = new Set(
  "ArithmeticError AssertionError AttributeError BaseException BufferError BytesWarning DeprecationWarning EOFError EnvironmentError Exception FloatingPointError FutureWarning GeneratorExit IOError ImportError ImportWarning IndentationError IndexError KeyError KeyboardInterrupt LookupError MemoryError NameError NotImplementedError OSError OverflowError PendingDeprecationWarning ReferenceError RuntimeError RuntimeWarning StopIteration SyntaxError SyntaxWarning SystemError SystemExit TabError TypeError UnboundLocalError UnicodeDecodeError UnicodeEncodeError UnicodeError UnicodeTranslateError UnicodeWarning UserWarning ValueError Warning ZeroDivisionError".split(
    " ",
  ),
);

/** The Python 3 `[module, name]` CPython would import for a Python 2 global. */
export function python3Name(module: string, name: string): readonly [string, string] {
  const renamed = NAME_MAPPING.get(`${module}.${name}`);
  if (renamed) return renamed;
  if (module === "exceptions" && PYTHON2_EXCEPTIONS.has(name)) return ["builtins", name];
  return [IMPORT_MAPPING.get(module) ?? module, name];
}
