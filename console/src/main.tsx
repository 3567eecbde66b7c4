import { createRoot } from "react-dom/client";
import { App } from "./app";
import { takeKeyFromFragment } from "./api";
import "./styles.css";

takeKeyFromFragment();
createRoot(document.getElementById("root")!).render(<App />);
