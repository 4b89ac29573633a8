// The robot and operator pages (they draw with uPlot), loaded on first visit: chat-only users never fetch them.

export { Operators } from '../ops/Operators.js';
export { RobotList } from './RobotList.js';
export { RobotPage } from './RobotPage.js';
