export { WriteError } from "../errors.js";
